"""The RepositoryTarget port: a snapshot in, one commit out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from prefect.blocks.core import Block
from pydantic import BaseModel, Field

from core.snapshots import SnapshotStore


class RepositoryState(BaseModel):
    """What a project owns at a repository provider; kept on the project, passed in and out."""

    repository_id: str | None = None
    url: str | None = None
    created_by_run: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class PublishRequest(BaseModel):
    """Ids a publish works from."""

    tenant_id: str
    project_id: str
    project_name: str
    run_id: str
    snapshot_id: str
    message: str = "Update generated app"


class PublishResult(BaseModel):
    """What a publish did."""

    repository_url: str
    commit_sha: str
    committed: bool = Field(description="False when the tree was unchanged and no commit was made.")
    created: bool = Field(False, description="True when this publish created the repository.")
    state: RepositoryState
    requests: int = 0
    writes: int = 0


class RepositoryTarget(Block, ABC):
    """A Block that keeps a project's files in a Git repository."""

    def preflight(self) -> None:
        """Check credentials and reachability; no side effects."""

    @abstractmethod
    def publish(self, snapshots: SnapshotStore, request: PublishRequest, state: RepositoryState) -> PublishResult:
        """Make the branch's tree equal the snapshot with at most one new commit."""

    def remove(self, state: RepositoryState) -> None:
        """Remove the repository (compensation for a run that created it)."""
        raise NotImplementedError(f"{type(self).__name__} cannot delete repositories")
