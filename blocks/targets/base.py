"""The DeploymentTarget port: a site snapshot in, a live URL out."""

from __future__ import annotations

from abc import ABC, abstractmethod

from prefect.blocks.core import Block
from pydantic import BaseModel, Field

from blocks.base import OperatorFields, ProviderRequest, ProviderState
from core.snapshots import SnapshotStore


class SiteState(ProviderState):
    """What a project owns at a hosting provider; kept on the project, passed in and out."""

    site_id: str | None = None
    live_snapshot: str | None = Field(
        None, description="The site snapshot the last deploy put live (set by the phase)."
    )
    live_url: str | None = Field(None, description="Where the last deploy serves it (set by the phase).")


class DeployRequest(ProviderRequest):
    """Ids a deploy works from."""

    site_snapshot_id: str


class DeployResult(BaseModel):
    """What a deploy did."""

    live_url: str = Field(description="URL whose index.html serves the site.")
    deploy_id: str
    state: SiteState
    created: bool = Field(False, description="True when this deploy created the site.")
    files_uploaded: int = 0
    bytes_uploaded: int = 0
    files_deleted: int = 0
    requests: int = 0


class DeploymentTarget(OperatorFields, Block, ABC):
    """A Block that serves a site snapshot at a URL."""

    def preflight(self) -> None:
        """Check credentials and reachability; no side effects."""

    @abstractmethod
    def deploy(self, snapshots: SnapshotStore, request: DeployRequest, state: SiteState) -> DeployResult:
        """Make the live site equal the snapshot, uploading only what the target lacks."""

    @abstractmethod
    def remove(self, state: SiteState) -> None:
        """Remove what a run created (compensation): afterwards the site is gone or serves nothing.

        A site that is already gone is not an error, so calling it twice is harmless.
        """
