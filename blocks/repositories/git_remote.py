"""Any Git remote over HTTPS, SSH or git:// (GitLab, Gitea, Bitbucket, self-hosted): ``pombolt-git-remote``.

A publish works in a throw-away bare repository: ``git fetch --depth=1`` of the branch, the snapshot's
tree built without a work tree (:mod:`blocks.repositories._git`), no commit when the tree equals the
fetched head's, else ``git commit-tree`` on top of it and ``git push`` of that commit to the branch — never
forced, so a remote that moved meanwhile rejects the push (:class:`~core.errors.ConcurrentUpdate`,
retryable). The remote must exist: the Block creates no repository, so a run never owns one and
:meth:`GitRemoteTarget.remove` (compensation) has nothing to delete — not even a branch a run started, as
servers refuse to delete a repository's default branch and history pushed there is the user's.

The token goes to git only through ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_0``/``GIT_CONFIG_VALUE_0`` =
``http.extraHeader: Authorization: <scheme> <token>`` in the child's environment — never in argv or
the URL — and every git message is redacted before it reaches an error.
"""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator

from blocks.repositories._git import Git, commit_snapshot, publish_result
from blocks.repositories.base import (
    PublishRequest,
    PublishResult,
    RepositoryState,
    RepositoryTarget,
    is_network_git_url,
)
from core.errors import ConcurrentUpdate, ConfigError, PomBoltError, ProviderError
from core.redaction import redact, register_secret
from core.snapshots import SnapshotStore

__all__ = ["GitRemoteTarget"]

_PROVIDER = "git-remote"
_NO_REMOTE_REF = "couldn't find remote ref"


class GitRemoteTarget(RepositoryTarget):
    """Pushes each snapshot as one commit to an existing Git remote."""

    _block_type_name: ClassVar[str | None] = "Pom-Bolt Git Remote"
    _block_type_slug: ClassVar[str | None] = "pombolt-git-remote"
    _description: ClassVar[str | None] = "Any Git remote (HTTPS, SSH): one commit per changed snapshot, never forced."
    #: A local path, ``file://`` URL or ``<helper>::`` transport names something on the worker (DESIGN §6).
    _operator_fields: ClassVar[tuple[str, ...]] = ("url",)

    url: str = Field(..., title="Remote URL", description="Clone URL without credentials (https://, ssh://, git://).")
    token: SecretStr | None = Field(None, title="Token", description="Sent as an HTTP Authorization header.")
    auth_scheme: str = Field(
        "Bearer", title="Auth scheme", description="'Bearer', or 'Basic' (token is then 'user:password')."
    )
    branch: str = Field("main", title="Branch", description="Branch that receives the commits.")
    author_name: str = Field("Pom-Bolt", title="Author name", description="Author and committer name.")
    author_email: str = Field("pombolt@localhost", title="Author email", description="Author and committer email.")

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, value: str) -> str:
        if "@" in value.split("://", 1)[-1].split("/", 1)[0] and not value.startswith("ssh://"):
            raise ValueError("the remote URL must not contain credentials; put the token in 'token'")
        return value

    def operator_settings(self) -> dict[str, str]:
        """``url`` when it is not a network remote: a local path or ``file://`` URL only the operator may use."""
        if is_network_git_url(self.url):
            return {}
        return {
            "url": "'url' must be a network remote (https://, ssh://, git:// or host:path); a local path, file:// "
            "URL or transport helper names something on the worker, which only the operator may use"
        }

    # --- the port -----------------------------------------------------------------------------------
    def preflight(self) -> None:
        """``git ls-remote`` the remote: proves reachability and the credentials.

        Raises:
            ProviderError: With git's (redacted) message.
        """
        with tempfile.TemporaryDirectory(prefix="pombolt-remote-") as tmp:
            self._git(Path(tmp)).run("ls-remote", "--heads", self.url, bare=False)

    def publish(self, snapshots: SnapshotStore, request: PublishRequest, state: RepositoryState) -> PublishResult:
        """Make the remote branch's tree equal the snapshot with at most one new commit.

        Raises:
            ConcurrentUpdate: The remote branch moved while publishing (retryable).
            ProviderError: git failed (unreachable remote, rejected credentials), redacted.
        """
        ref = f"refs/heads/{self.branch}"
        with tempfile.TemporaryDirectory(prefix="pombolt-remote-") as tmp:
            git = self._git(Path(tmp))
            git.init_bare(self.branch)
            fetched = git.try_run("fetch", "--quiet", "--depth=1", self.url, f"+{ref}:{ref}")
            if fetched.returncode != 0 and _NO_REMOTE_REF not in fetched.stderr.decode(errors="replace"):
                raise self._failure("fetch", fetched.stderr)
            old = git.resolve(f"{ref}^{{commit}}") if fetched.returncode == 0 else None
            commit = commit_snapshot(git, snapshots, request, old)
            if commit[1]:
                self._push(git, f"{commit[0]}:{ref}")
        return publish_result(
            request,
            state,
            repository_id=self._safe_url(),
            url=self._safe_url(),
            commit=commit,
            created=False,
            git=git,
            extra={"branch": self.branch},
        )

    def remove(self, state: RepositoryState) -> None:
        """Nothing to remove: the remote existed before any run, and what was pushed there stays."""

    # --- helpers ------------------------------------------------------------------------------------
    def _push(self, git: Git, refspec: str) -> None:
        """Push without force; a remote that moved meanwhile is a ConcurrentUpdate."""
        pushed = git.try_run("push", "--quiet", self.url, refspec)
        if pushed.returncode == 0:
            return
        text = pushed.stderr.decode(errors="replace")
        if "non-fast-forward" in text or "fetch first" in text or "rejected" in text:
            raise ConcurrentUpdate(f"{self.branch} of {self._safe_url()} moved while publishing; run again")
        raise self._failure("push", pushed.stderr)

    def _safe_url(self) -> str:
        return redact(self.url)

    def _git(self, tmp: Path) -> Git:
        git = Git(_PROVIDER, tmp / "work.git", tmp, (self.author_name, self.author_email))
        if self.token is not None and self.token.get_secret_value():
            register_secret(self.token)
            value = self.token.get_secret_value()
            if self.auth_scheme.lower() == "basic" and ":" in value:
                value = base64.b64encode(value.encode()).decode()
            git.env.update(
                {
                    "GIT_CONFIG_COUNT": "1",
                    "GIT_CONFIG_KEY_0": "http.extraHeader",
                    "GIT_CONFIG_VALUE_0": f"Authorization: {self.auth_scheme} {value}",
                }
            )
        return git

    def _failure(self, action: str, stderr: bytes) -> PomBoltError:
        detail = redact(stderr.decode("utf-8", "replace").strip()[-600:], self._secrets()) or "no detail"
        if "Authentication failed" in detail or "401" in detail or "403" in detail:
            return ConfigError(f"git {action} to {self._safe_url()} was refused ({detail}); check the Block's token")
        return ProviderError(_PROVIDER, f"git {action} to {self._safe_url()} failed: {detail}")

    def _secrets(self) -> list[str]:
        return [self.token.get_secret_value()] if self.token is not None else []
