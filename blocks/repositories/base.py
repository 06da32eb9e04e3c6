"""The RepositoryTarget port: a snapshot in, one commit out."""

from __future__ import annotations

from abc import ABC, abstractmethod

from prefect.blocks.core import Block
from pydantic import BaseModel, Field

from blocks.base import ProviderRequest, ProviderState
from core.snapshots import SnapshotStore


class RepositoryState(ProviderState):
    """What a project owns at a repository provider; kept on the project, passed in and out."""

    repository_id: str | None = None
    head: str | None = Field(None, description="The commit the last publish left on the branch (set by the phase).")
    head_snapshot: str | None = Field(None, description="The snapshot that commit holds (set by the phase).")


class PublishRequest(ProviderRequest):
    """Ids a publish works from."""

    snapshot_id: str
    message: str = "Update generated app"

    def commit_message(self) -> str:
        """The commit message: the request's message plus trailers naming the snapshot and the run."""
        return (
            f"{self.message.strip() or 'Update generated app'}\n\n"
            f"Pombolt-Snapshot: {self.snapshot_id}\nPombolt-Run: {self.run_id}\n"
        )


class PublishResult(BaseModel):
    """What a publish did."""

    repository_url: str
    commit_sha: str
    committed: bool = Field(description="False when the tree was unchanged and no commit was made.")
    created: bool = Field(
        False, description="True when this publish created the repository (for a Git remote: the branch)."
    )
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

    @abstractmethod
    def remove(self, state: RepositoryState) -> None:
        """Remove the repository a run created (compensation): afterwards it is gone or empty.

        A repository that is already gone is not an error, so calling it twice is harmless. A Block that
        writes into repositories it did not create removes only what a run created (see its docstring).
        """
