"""The DeploymentTarget port: a site snapshot in, a live URL out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from prefect.blocks.core import Block
from pydantic import BaseModel, Field

from core.snapshots import SnapshotStore


class SiteState(BaseModel):
    """What a project owns at a hosting provider; kept on the project, passed in and out."""

    site_id: str | None = None
    url: str | None = None
    created_by_run: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class DeployRequest(BaseModel):
    """Ids a deploy works from."""

    tenant_id: str
    project_id: str
    project_name: str
    run_id: str
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


class DeploymentTarget(Block, ABC):
    """A Block that serves a site snapshot at a URL."""

    def preflight(self) -> None:
        """Check credentials and reachability; no side effects."""

    @abstractmethod
    def deploy(self, snapshots: SnapshotStore, request: DeployRequest, state: SiteState) -> DeployResult:
        """Make the live site equal the snapshot, uploading only what the target lacks."""

    def index_url(self, result: DeployResult) -> str:
        """The URL verify fetches to compare ``index.html`` (default: the live URL)."""
        return result.live_url

    def remove(self, state: SiteState) -> None:
        """Remove the site (compensation for a run that created it)."""
        raise NotImplementedError(f"{type(self).__name__} cannot delete sites")
