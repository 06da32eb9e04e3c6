"""Any Git remote over HTTPS, SSH or git:// (GitLab, Gitea, Bitbucket, self-hosted): ``pombolt-git-remote``.

A publish works in a throw-away bare repository: ``git fetch --depth=1`` of the branch, the snapshot's
tree built without a work tree (as :mod:`blocks.repositories.local_git` does), no commit when the tree
equals the fetched head's, else ``git commit-tree`` on top of it and ``git push`` of that commit to the
branch — never forced, so a remote that moved meanwhile rejects the push
(:class:`~core.errors.ConcurrentUpdate`, retryable). The remote must exist; the Block does not create
repositories.

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

from blocks.repositories.base import PublishRequest, PublishResult, RepositoryState, RepositoryTarget
from blocks.repositories.local_git import LocalGitRepository, _Git
from core.errors import ConcurrentUpdate, ConfigError, ProviderError
from core.http import redact, register_secret
from core.snapshots import SnapshotStore

__all__ = ["GitRemoteTarget"]

_PROVIDER = "git-remote"


class GitRemoteTarget(RepositoryTarget):
    """Pushes each snapshot as one commit to an existing Git remote."""

    _block_type_name: ClassVar[str | None] = "Pom-Bolt Git Remote"
    _block_type_slug: ClassVar[str | None] = "pombolt-git-remote"
    _description: ClassVar[str | None] = "Any Git remote (HTTPS, SSH): one commit per changed snapshot, never forced."

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
        manifest = snapshots.manifest(request.snapshot_id)
        with tempfile.TemporaryDirectory(prefix="pombolt-remote-") as tmp:
            git = self._git(Path(tmp))
            git.run("init", "--quiet", "--bare", "-b", self.branch, str(git.git_dir), bare=False)
            ref = f"refs/heads/{self.branch}"
            fetched = git.try_run("fetch", "--quiet", "--depth=1", self.url, f"+{ref}:{ref}")
            old = git.resolve(f"{ref}^{{commit}}") if fetched.returncode == 0 else None
            if fetched.returncode != 0 and "couldn't find remote ref" not in fetched.stderr.decode(errors="replace"):
                raise self._failure("fetch", fetched.stderr)
            tree = LocalGitRepository._write_tree(git, snapshots, manifest, Path(tmp))
            committed = not (old is not None and git.resolve(f"{old}^{{tree}}") == tree)
            sha = str(old)
            if committed:
                message = (
                    f"{request.message.strip() or 'Update generated app'}\n\n"
                    f"Pombolt-Snapshot: {request.snapshot_id}\nPombolt-Run: {request.run_id}\n"
                )
                sha = git.out("commit-tree", tree, *(["-p", old] if old else []), "-F", "-", stdin=message.encode())
                pushed = git.try_run("push", "--quiet", self.url, f"{sha}:{ref}")
                if pushed.returncode != 0:
                    text = pushed.stderr.decode(errors="replace")
                    if "non-fast-forward" in text or "fetch first" in text or "rejected" in text:
                        raise ConcurrentUpdate(f"{self.branch} of {self._safe_url()} moved while publishing; run again")
                    raise self._failure("push", pushed.stderr)
            calls = git.calls
        return PublishResult(
            repository_url=self._safe_url(),
            commit_sha=sha,
            committed=committed,
            created=False,
            state=RepositoryState(
                repository_id=self._safe_url(), url=self._safe_url(), extra={**state.extra, "branch": self.branch}
            ),
            requests=calls,
            writes=1 if committed else 0,
        )

    # --- helpers ------------------------------------------------------------------------------------
    def _safe_url(self) -> str:
        return redact(self.url)

    def _git(self, tmp: Path) -> _Git:
        git = _Git(tmp / "work.git", tmp, (self.author_name, self.author_email))
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

    def _failure(self, action: str, stderr: bytes) -> ProviderError:
        detail = redact(stderr.decode("utf-8", "replace").strip()[-600:], self._secrets()) or "no detail"
        if "Authentication failed" in detail or "401" in detail or "403" in detail:
            raise ConfigError(f"git {action} to {self._safe_url()} was refused ({detail}); check the Block's token")
        return ProviderError(_PROVIDER, f"git {action} to {self._safe_url()} failed: {detail}")

    def _secrets(self) -> list[str]:
        return [self.token.get_secret_value()] if self.token is not None else []
