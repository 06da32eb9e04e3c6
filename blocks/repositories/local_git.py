"""Local Git repositories: one bare repository per project in a folder (DESIGN §8, embedded mode).

Layout: ``<root>/<tenant_id>/<slug>-<short project id>.git``, created with ``git init --bare -b <branch>``
and recorded in :class:`~blocks.repositories.base.RepositoryState` as ``repository_id =
"<tenant_id>/<slug>-<short id>"``, so later runs reuse it. The commit is built without a work tree:

1. every blob goes in with one ``git fast-import`` (it skips objects the repository already has);
2. a throw-away index (``GIT_INDEX_FILE``) is filled with ``git update-index -z --index-info`` from the
   manifest alone — so removed files disappear — and ``git write-tree`` turns it into a tree;
3. when the tree equals the branch head's, nothing is committed; otherwise ``git commit-tree`` with the
   head as parent and ``git update-ref <branch> NEW OLD`` (compare-and-swap: a concurrent publish loses
   with :class:`~core.errors.ConcurrentUpdate`).

git runs with an isolated environment (no system or user config, ``HOME`` in a temp dir, no prompts), so
nothing on the machine changes modes, line endings or identities.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator

from blocks.naming import repository_name
from blocks.repositories.base import PublishRequest, PublishResult, RepositoryState, RepositoryTarget
from core.errors import ConcurrentUpdate, ConfigError, Conflict, ProviderError, ProviderUnavailable
from core.settings import get_settings
from core.snapshots import Manifest, SnapshotStore

__all__ = ["LocalGitRepository"]

_PROVIDER = "local-git"
_TENANT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_REPO_ID = re.compile(r"^(?P<tenant>[A-Za-z0-9_-]{1,64})/(?P<name>[a-z0-9][a-z0-9-]{0,79})$")
_BRANCH = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/-]{1,100}(?<![./])$")
_GIT_TIMEOUT = 120.0
_NO_GIT = "git is not installed or not on PATH; install git to use local repositories"


class _Git:
    """Runs git against one bare repository with an isolated environment, counting invocations."""

    def __init__(self, git_dir: Path, home: Path, author: tuple[str, str]) -> None:
        self.git_dir = git_dir
        self.home = home
        self.calls = 0
        inherited = {k: v for k in ("PATH", "TMPDIR", "SYSTEMROOT") if (v := os.environ.get(k))}
        self.env = {
            **inherited,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home),
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
            "GIT_AUTHOR_NAME": author[0],
            "GIT_AUTHOR_EMAIL": author[1],
            "GIT_COMMITTER_NAME": author[0],
            "GIT_COMMITTER_EMAIL": author[1],
        }

    def run(
        self, *args: str, stdin: bytes | None = None, index: Path | None = None, bare: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``git [--git-dir DIR] ARGS``; a non-zero exit becomes a :class:`ProviderError`."""
        done = self.try_run(*args, stdin=stdin, index=index, bare=bare)
        if done.returncode != 0:
            detail = done.stderr.decode("utf-8", "replace").strip()[-800:] or f"exit code {done.returncode}"
            raise ProviderError(_PROVIDER, f"git {args[0]} failed in {self.git_dir}: {detail}")
        return done

    def try_run(
        self, *args: str, stdin: bytes | None = None, index: Path | None = None, bare: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        """Run git and return the completed process whatever its exit code."""
        argv = ["git", f"--git-dir={self.git_dir}", *args] if bare else ["git", *args]
        env = {**self.env, "GIT_INDEX_FILE": str(index)} if index else self.env
        self.calls += 1
        try:
            return subprocess.run(
                argv,
                input=stdin,
                capture_output=True,
                env=env,
                cwd=self.home,
                timeout=_GIT_TIMEOUT,
                check=False,
            )
        except FileNotFoundError as exc:
            raise ConfigError(_NO_GIT) from exc
        except subprocess.TimeoutExpired as exc:
            raise ProviderUnavailable(
                _PROVIDER, f"git {args[0]} took longer than {_GIT_TIMEOUT:.0f} s in {self.git_dir}"
            ) from exc

    def out(self, *args: str, stdin: bytes | None = None, index: Path | None = None) -> str:
        """Run git and return its stripped standard output."""
        return self.run(*args, stdin=stdin, index=index).stdout.decode().strip()

    def resolve(self, rev: str) -> str | None:
        """The object id ``rev`` names, or None when it does not exist."""
        done = self.try_run("rev-parse", "--verify", "--quiet", rev)
        if done.returncode != 0:
            return None
        return done.stdout.decode().strip() or None


class LocalGitRepository(RepositoryTarget):
    """Keeps each project in a bare Git repository on this machine (``file://`` URLs, no accounts)."""

    _block_type_name: ClassVar[str | None] = "Pom-Bolt Local Git Repository"
    _block_type_slug: ClassVar[str | None] = "pombolt-local-git"
    _description: ClassVar[str | None] = (
        "Bare Git repositories in a local folder, one per project; one commit per changed snapshot."
    )

    root: str | None = Field(
        None,
        title="Root folder",
        description="Folder holding the bare repositories; default '<POMBOLT_DATA_DIR>/repos'.",
    )
    branch: str = Field("main", title="Branch", description="Branch that receives the commits.")
    author_name: str = Field("Pom-Bolt", title="Author name", description="Author and committer name.")
    author_email: str = Field(
        "pombolt@localhost", title="Author email", description="Author and committer email."
    )

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
            raise ConfigError(_NO_GIT)
        root = self.root_path()
        try:
            root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=root, prefix=".write-probe-"):
                pass
        except OSError as exc:
            raise ConfigError(
                f"repository folder {root} is not writable ({exc.strerror or exc}); "
                "set the block's root or POMBOLT_DATA_DIR to a folder you can write"
            ) from exc

    def publish(
        self, snapshots: SnapshotStore, request: PublishRequest, state: RepositoryState
    ) -> PublishResult:
        """Make the branch's tree equal the snapshot with at most one new commit.

        Raises:
            ConfigError: When git is missing or the root folder is unusable.
            Conflict: When the state names another tenant's repository.
            ConcurrentUpdate: When another publish moved the branch meanwhile (retryable).
            ProviderError: When git fails, with git's message.
        """
        repo_id = self._repository_id(request, state)
        git_dir = self.root_path() / f"{repo_id}.git"
        manifest = snapshots.manifest(request.snapshot_id)
        with tempfile.TemporaryDirectory(prefix="pombolt-git-") as tmp:
            git = _Git(git_dir, Path(tmp), (self.author_name, self.author_email))
            created = self._ensure_repository(git)
            tree = self._write_tree(git, snapshots, manifest, Path(tmp))
            ref = f"refs/heads/{self.branch}"
            old = git.resolve(f"{ref}^{{commit}}")
            if old is not None and git.resolve(f"{old}^{{tree}}") == tree:
                sha, committed = old, False
            else:
                sha, committed = self._commit(git, ref, tree, old, request), True
        url = git_dir.as_uri()
        return PublishResult(
            repository_url=url,
            commit_sha=sha,
            committed=committed,
            created=created,
            state=RepositoryState(
                repository_id=repo_id,
                url=url,
                created_by_run=request.run_id if created else state.created_by_run,
                extra={**state.extra, "branch": self.branch},
            ),
            requests=git.calls,
            writes=1 if committed else 0,
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

    def _ensure_repository(self, git: _Git) -> bool:
        """Create the bare repository when missing; True when this call created it."""
        if (git.git_dir / "HEAD").is_file():
            return False
        try:
            git.git_dir.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create {git.git_dir.parent} ({exc.strerror or exc}); set a writable root"
            ) from exc
        git.run("init", "--quiet", "--bare", "-b", self.branch, str(git.git_dir), bare=False)
        return True

    @staticmethod
    def _write_tree(git: _Git, snapshots: SnapshotStore, manifest: Manifest, tmp: Path) -> str:
        """Store every blob and build the snapshot's tree from scratch; return the tree id."""
        shas = list(dict.fromkeys(e.sha256 for e in manifest.files))
        oids: dict[str, str] = {}
        if shas:
            paths = {e.sha256: e.path for e in manifest.files}
            stream = bytearray()
            for mark, sha in enumerate(shas, start=1):
                data = snapshots.read_blob(sha, path=paths[sha])
                stream += b"blob\nmark :%d\ndata %d\n" % (mark, len(data)) + data + b"\n"
            marks = tmp / "marks"
            git.run("fast-import", "--quiet", f"--export-marks={marks}", stdin=bytes(stream))
            by_mark = dict(line.split(" ", 1) for line in marks.read_text().split("\n") if line)
            oids = {sha: by_mark[f":{mark}"] for mark, sha in enumerate(shas, start=1)}
        index = tmp / "index"
        entries = b"".join(f"{e.mode} {oids[e.sha256]}\t{e.path}".encode() + b"\0" for e in manifest.files)
        git.run("update-index", "-z", "--index-info", stdin=entries, index=index)
        return git.out("write-tree", index=index)

    def _commit(self, git: _Git, ref: str, tree: str, old: str | None, request: PublishRequest) -> str:
        """Commit ``tree`` on top of ``old`` and move the branch with compare-and-swap."""
        message = (
            f"{request.message.strip() or 'Update generated app'}\n\n"
            f"Pombolt-Snapshot: {request.snapshot_id}\nPombolt-Run: {request.run_id}\n"
        )
        parents = ["-p", old] if old else []
        new = git.out("commit-tree", tree, *parents, "-F", "-", stdin=message.encode())
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
        return new
