"""The RepositoryTarget port: a snapshot in, one commit out; and which Git URLs name a network remote."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from urllib.parse import urlsplit

from prefect.blocks.core import Block
from pydantic import BaseModel, Field

from blocks.base import OperatorFields, ProviderRequest, ProviderState
from core.snapshots import SnapshotStore

#: URL schemes of Git remotes over the network (``file://`` and ``<helper>::`` transports are local).
NETWORK_GIT_SCHEMES = frozenset({"https", "http", "ssh", "git", "git+ssh", "ssh+git"})
_HOST = re.compile(r"^(?:[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?|[0-9a-f:.]+)$")
_USER = re.compile(r"^[A-Za-z0-9._~+%][A-Za-z0-9._~+%-]*$")
_SCP = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>[^@/:\[\]]+|\[[0-9A-Fa-f:.]+\]):(?P<path>[^:].*)$")


def is_network_git_url(url: str) -> bool:
    """Whether git reads ``url`` as a remote over the network, never as something on this machine.

    Accepted: ``https://``, ``http://``, ``ssh://`` and ``git://`` URLs with a host name, and scp-like
    ``[user@]host:path``. Refused: ``file://`` URLs, absolute, relative and ``~`` paths, ``<helper>::``
    transports (``ext::`` runs a command), anything starting with ``-`` (git would read an option) or holding
    whitespace or control characters.
    """
    if not url or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return False
    if "://" in url:
        try:
            parts = urlsplit(url)
            host, user = parts.hostname or "", parts.username
        except ValueError:
            return False
        if parts.scheme.lower() not in NETWORK_GIT_SCHEMES:
            return False
    else:
        match = _SCP.match(url)
        if match is None:
            return False
        host, user = match["host"].strip("[]").lower(), match["user"]
    return _HOST.match(host) is not None and (user is None or _USER.match(user) is not None)


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


class RepositoryTarget(OperatorFields, Block, ABC):
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
