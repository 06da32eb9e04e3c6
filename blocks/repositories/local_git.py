"""Local Git repositories: one bare repository per project in a folder (DESIGN §8, embedded mode).

Layout: ``<root>/<tenant_id>/<slug>-<short project id>.git``, created with ``git init --bare -b <branch>``
and recorded in :class:`~blocks.repositories.base.RepositoryState` as ``repository_id =
"<tenant_id>/<slug>-<short id>"``, so later runs reuse it. The commit is built without a work tree
(:mod:`blocks.repositories._git`); the branch then moves with ``git update-ref <branch> NEW OLD``
(compare-and-swap: a concurrent publish loses with :class:`~core.errors.ConcurrentUpdate`).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator

from blocks._local import require_writable
from blocks.naming import repository_name
from blocks.repositories._git import NO_GIT, Git, commit_snapshot, publish_result
from blocks.repositories.base import PublishRequest, PublishResult, RepositoryState, RepositoryTarget
from core.errors import ConcurrentUpdate, ConfigError, Conflict, ProviderError
from core.settings import get_settings
from core.snapshots import SnapshotStore

__all__ = ["LocalGitRepository"]

_PROVIDER = "local-git"
_TENANT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_REPO_ID = re.compile(r"^(?P<tenant>[A-Za-z0-9_-]{1,64})/(?P<name>[a-z0-9][a-z0-9-]{0,79})$")
_BRANCH = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/-]{1,100}(?<![./])$")


class LocalGitRepository(RepositoryTarget):
    """Keeps each project in a bare Git repository on this machine (``file://`` URLs, no accounts)."""

    _block_type_name: ClassVar[str | None] = "Pom-Bolt Local Git Repository"
    _block_type_slug: ClassVar[str | None] = "pombolt-local-git"
    _description: ClassVar[str | None] = (
        "Bare Git repositories in a local folder, one per project; one commit per changed snapshot."
    )
    #: It names a folder on the worker: only the operator sets it (DESIGN §6).
    _operator_fields: ClassVar[tuple[str, ...]] = ("root",)

    root: str | None = Field(
        None,
        title="Root folder",
        description="Folder holding the bare repositories; default '<POMBOLT_DATA_DIR>/repos'.",
    )
    branch: str = Field("main", title="Branch", description="Branch that receives the commits.")
    author_name: str = Field("Pom-Bolt", title="Author name", description="Author and committer name.")
    author_email: str = Field("pombolt@localhost", title="Author email", description="Author and committer email.")

    @field_validator("branch")
    @classmethod
    def _valid_branch(cls, value: str) -> str:
        if not _BRANCH.match(value) or value.endswith(".lock"):
            raise ValueError(f"{value!r} is not a valid Git branch name")
        return value

    # --- the port -----------------------------------------------------------------------------------
    def preflight(self) -> None:
        """Check that ``git`` is on PATH and the root folder is creatable and writable.

        Raises:
            ConfigError: Naming what is missing and how to fix it.
        """
        if shutil.which("git") is None:
            raise ConfigError(NO_GIT)
        require_writable(self.root_path(), "repository")

    def publish(self, snapshots: SnapshotStore, request: PublishRequest, state: RepositoryState) -> PublishResult:
        """Make the branch's tree equal the snapshot with at most one new commit.

        Raises:
            ConfigError: When git is missing or the root folder is unusable.
            Conflict: When the state names another tenant's repository.
            ConcurrentUpdate: When another publish moved the branch meanwhile (retryable).
            ProviderError: When git fails, with git's message.
        """
        repo_id = self._repository_id(request, state)
        git_dir = self.root_path() / f"{repo_id}.git"
        with tempfile.TemporaryDirectory(prefix="pombolt-git-") as tmp:
            git = Git(_PROVIDER, git_dir, Path(tmp), (self.author_name, self.author_email))
            created = self._ensure_repository(git)
            ref = f"refs/heads/{self.branch}"
            old = git.resolve(f"{ref}^{{commit}}")
            commit = commit_snapshot(git, snapshots, request, old)
            if commit[1]:
                self._move(git, ref, commit[0], old, request)
        return publish_result(
            request,
            state,
            repository_id=repo_id,
            url=git_dir.as_uri(),
            commit=commit,
            created=created,
            git=git,
            extra={"branch": self.branch},
        )

    def remove(self, state: RepositoryState) -> None:
        """Remove the project's bare repository folder (nothing to do when it is already gone).

        Raises:
            ConfigError: When the state does not name a local-git repository under the root.
        """
        if not state.repository_id:
            return
        git_dir = self.root_path() / f"{self._checked_id(state.repository_id)}.git"
        if not git_dir.exists():
            return
        if not (git_dir / "HEAD").is_file() or not (git_dir / "objects").is_dir():
            raise ConfigError(f"{git_dir} is not a bare Git repository; refusing to delete it")
        shutil.rmtree(git_dir)

    # --- helpers ------------------------------------------------------------------------------------
    def root_path(self) -> Path:
        """The folder holding the repositories (``<data_dir>/repos`` unless configured)."""
        if self.root:
            return Path(self.root).expanduser().resolve()
        return get_settings().data_dir / "repos"

    def _repository_id(self, request: PublishRequest, state: RepositoryState) -> str:
        if state.repository_id:
            repo_id = self._checked_id(state.repository_id)
            if repo_id.split("/", 1)[0] != request.tenant_id:
                raise Conflict(_PROVIDER, f"repository {repo_id} belongs to another tenant")
            return repo_id
        if not _TENANT.match(request.tenant_id):
            raise ConfigError(f"tenant id {request.tenant_id!r} is not a safe folder name")
        return f"{request.tenant_id}/{repository_name(request.project_name, request.project_id)}"

    @staticmethod
    def _checked_id(repo_id: str) -> str:
        if not _REPO_ID.match(repo_id):
            raise ConfigError(f"repository id {repo_id!r} is not a local-git id ('<tenant>/<name>')")
        return repo_id

    def _ensure_repository(self, git: Git) -> bool:
        """Create the bare repository when missing; True when this call created it."""
        if (git.git_dir / "HEAD").is_file():
            return False
        try:
            git.git_dir.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create {git.git_dir.parent} ({exc.strerror or exc}); set a writable root"
            ) from exc
        git.init_bare(self.branch)
        return True

    def _move(self, git: Git, ref: str, new: str, old: str | None, request: PublishRequest) -> None:
        """Move the branch from ``old`` to ``new`` with compare-and-swap."""
        expected = old or "0" * len(new)
        done = git.try_run("update-ref", "-m", f"pombolt publish {request.run_id}", ref, new, expected)
        if done.returncode != 0:
            now = git.resolve(ref)
            if now != old:
                raise ConcurrentUpdate(
                    f"another publish moved {self.branch} of {git.git_dir.name} while this one ran; run again"
                )
            detail = done.stderr.decode("utf-8", "replace").strip()[-800:]
            raise ProviderError(_PROVIDER, f"git update-ref failed in {git.git_dir}: {detail}")
