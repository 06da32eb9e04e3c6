"""The contract every RepositoryTarget passes (fsspec's abstract-test pattern).

The suite is a plain class (no ``Test`` prefix, so pytest does not collect it by itself). A provider runs
it by subclassing it in its own test module and providing a ``target`` fixture::

    from tests.contracts.repository_suite import RepositoryTargetContract

    class TestGitHubRepositoryTarget(RepositoryTargetContract):
        @pytest.fixture
        def target(self, fake_github) -> RepositoryTarget:
            return GitHubRepositoryTarget(api_url=fake_github.url, owner="acme", ...)

        # Optional overrides, when a clone needs more than ``git clone <result.repository_url>``:
        @pytest.fixture
        def clone_url(self, fake_github) -> Callable[[PublishResult], str]:
            return lambda result: fake_github.git_url(result.state.repository_id)

        @pytest.fixture
        def git_env(self) -> dict[str, str]:
            return {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.extraHeader", ...}

Fixtures the suite itself provides (override any of them): ``snapshots`` (a SnapshotStore on an unsaved
Prefect ``LocalFileSystem`` in ``tmp_path``, tenant ``t1``), ``project_name``, ``clone_url`` (default: the
result's ``repository_url``), ``git_env`` (extra environment for ``git clone``, default none),
``publisher`` (publishes file lists for one fresh project, threading the RepositoryState from run to run)
and ``clone`` (clones a result into ``tmp_path`` and returns a :class:`ClonedRepo`).

What ``remove`` must do: afterwards a repository the publish created is gone or empty (``git ls-remote``
fails or lists no branch) — one it did not create (a Git remote that existed before) is left as it was —
and a second ``remove`` is harmless. Every test uses a fresh project id, so a provider may share one
fake server (or one real account) across tests.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prefect.filesystems import LocalFileSystem

from blocks.repositories.base import PublishRequest, PublishResult, RepositoryState, RepositoryTarget
from core.files import GeneratedFile
from core.snapshots import SnapshotStore
from tests.contracts import samples

TENANT = "t1"


# --- clone helpers (plain functions, usable outside the suite) -----------------------------------------
def git_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """An isolated git environment: no system or user config, no prompts."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "HOME": tempfile.gettempdir(),
        "LC_ALL": "C",
        **(extra or {}),
    }


@dataclass
class ClonedRepo:
    """What a fresh clone shows: work-tree bytes, tree modes and history (newest commit first)."""

    path: Path
    files: dict[str, bytes] = field(default_factory=dict)
    modes: dict[str, str] = field(default_factory=dict)
    commits: list[str] = field(default_factory=list)
    merges: list[str] = field(default_factory=list)

    @property
    def head(self) -> str:
        """The checked-out commit."""
        return self.commits[0]


def _git(repo: Path, *args: str, env: dict[str, str]) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, env=env, timeout=60)
    assert done.returncode == 0, f"git {' '.join(args)} failed: {done.stderr.decode(errors='replace')}"
    return done.stdout.decode()


def clone_repository(url: str, dest: Path, env: dict[str, str] | None = None) -> ClonedRepo:
    """``git clone url dest`` (default branch) and read what it holds.

    Raises:
        AssertionError: When git fails, with its message.
    """
    git_env = git_environment(env)
    done = subprocess.run(["git", "clone", "--quiet", url, str(dest)], capture_output=True, env=git_env, timeout=60)
    assert done.returncode == 0, f"git clone {url} failed: {done.stderr.decode(errors='replace')}"
    repo = ClonedRepo(path=dest)
    for path in sorted(dest.rglob("*")):
        rel = path.relative_to(dest).as_posix()
        if path.is_file() and not rel.startswith(".git/"):
            repo.files[rel] = path.read_bytes()
    for record in _git(dest, "ls-tree", "-r", "-z", "HEAD", env=git_env).split("\0"):
        if record:
            meta, rel = record.split("\t", 1)
            repo.modes[rel] = meta.split(" ")[0]
    repo.commits = _git(dest, "rev-list", "HEAD", env=git_env).split()
    repo.merges = _git(dest, "rev-list", "--min-parents=2", "HEAD", env=git_env).split()
    return repo


def remote_heads(url: str, env: dict[str, str] | None = None) -> list[str]:
    """The branches ``git ls-remote --heads url`` lists; none when the repository is gone."""
    done = subprocess.run(
        ["git", "ls-remote", "--heads", url], capture_output=True, env=git_environment(env), timeout=60
    )
    if done.returncode != 0:
        return []
    return [line.split("\t", 1)[1] for line in done.stdout.decode().splitlines() if "\t" in line]


def clone_files(url: str, env: dict[str, str] | None = None) -> dict[str, bytes]:
    """The files of a fresh clone of ``url``: path → bytes."""
    with tempfile.TemporaryDirectory(prefix="pombolt-clone-") as tmp:
        return clone_repository(url, Path(tmp) / "clone", env).files


# --- a small driver that threads state from run to run ---------------------------------------------
class Publisher:
    """Publishes file lists for one project, the way the pipeline does (state in, state out)."""

    def __init__(self, target: RepositoryTarget, snapshots: SnapshotStore, project_name: str) -> None:
        self.target = target
        self.snapshots = snapshots
        self.project_name = project_name
        self.project_id = uuid.uuid4().hex
        self.state = RepositoryState()
        self.results: list[PublishResult] = []

    def publish(self, files: Sequence[GeneratedFile], message: str = "Update generated app") -> PublishResult:
        """Store ``files`` as a snapshot and publish it; remember the new state."""
        request = PublishRequest(
            tenant_id=self.snapshots.tenant_id,
            project_id=self.project_id,
            project_name=self.project_name,
            run_id=uuid.uuid4().hex,
            snapshot_id=samples.store(self.snapshots, files),
            message=message,
        )
        result = self.target.publish(self.snapshots, request, self.state)
        self.state = result.state
        self.results.append(result)
        return result


def _as_dict(files: Sequence[GeneratedFile]) -> dict[str, bytes]:
    return {f.path: f.content for f in files}


class RepositoryTargetContract:
    """Tests every RepositoryTarget passes; subclass it and provide a ``target`` fixture."""

    # --- fixtures a provider may override ---------------------------------------------------------------
    @pytest.fixture
    def target(self) -> RepositoryTarget:
        """The Block under test: every provider overrides this."""
        pytest.fail("a RepositoryTargetContract subclass must provide a 'target' fixture")

    @pytest.fixture
    def snapshots(self, tmp_path: Path) -> SnapshotStore:
        """Snapshot storage on an unsaved LocalFileSystem block."""
        return SnapshotStore(LocalFileSystem(basepath=str(tmp_path / "storage")), TENANT)

    @pytest.fixture
    def project_name(self) -> str:
        """Human name of the test project."""
        return "Contract Test App"

    @pytest.fixture
    def clone_url(self) -> Callable[[PublishResult], str]:
        """Maps a publish result to a URL ``git clone`` can read."""
        return lambda result: result.repository_url

    @pytest.fixture
    def git_env(self) -> dict[str, str]:
        """Extra environment for ``git clone`` (e.g. an auth header through ``GIT_CONFIG_*``)."""
        return {}

    @pytest.fixture
    def publisher(self, target: RepositoryTarget, snapshots: SnapshotStore, project_name: str) -> Publisher:
        """A publisher for one fresh project."""
        return Publisher(target, snapshots, project_name)

    @pytest.fixture
    def clone(
        self, tmp_path: Path, clone_url: Callable[[PublishResult], str], git_env: dict[str, str]
    ) -> Callable[[PublishResult], ClonedRepo]:
        """Clones a publish result into a new folder under ``tmp_path``."""
        counter = iter(range(1_000_000))
        return lambda result: clone_repository(clone_url(result), tmp_path / f"clone-{next(counter)}", git_env)

    # --- the contract ---------------------------------------------------------------------------------
    def test_preflight_passes(self, target: RepositoryTarget) -> None:
        target.preflight()

    def test_first_publish_creates_a_commit_and_the_clone_equals_the_snapshot(
        self, publisher: Publisher, clone: Callable[[PublishResult], ClonedRepo]
    ) -> None:
        files = samples.small_site()
        result = publisher.publish(files)
        assert result.committed and result.created
        assert result.state.repository_id and result.state.url
        repo = clone(result)
        assert repo.files == _as_dict(files)
        assert repo.commits == [result.commit_sha]

    def test_unchanged_publish_makes_no_commit(
        self, publisher: Publisher, clone: Callable[[PublishResult], ClonedRepo]
    ) -> None:
        first = publisher.publish(samples.small_site())
        second = publisher.publish(samples.small_site())
        assert not second.committed and not second.created
        assert second.commit_sha == first.commit_sha
        assert second.writes == 0
        assert second.state.repository_id == first.state.repository_id
        assert clone(second).commits == [first.commit_sha]

    def test_later_publish_reuses_the_repository(self, publisher: Publisher) -> None:
        first = publisher.publish(samples.small_site())
        second = publisher.publish(samples.changed(samples.small_site(), {"app.js": "console.log(2);\n"}))
        assert second.committed and not second.created
        assert second.state.repository_id == first.state.repository_id
        assert second.repository_url == first.repository_url

    def test_deleted_file_is_gone_in_the_next_commit(
        self, publisher: Publisher, clone: Callable[[PublishResult], ClonedRepo]
    ) -> None:
        publisher.publish(samples.small_site())
        fewer = samples.changed(samples.small_site(), {"styles.css": None, "fonts/x.woff2": None})
        result = publisher.publish(fewer)
        assert result.committed
        repo = clone(result)
        assert "styles.css" not in repo.files and "fonts/x.woff2" not in repo.files
        assert repo.files == _as_dict(fewer)

    def test_binary_files_are_byte_exact(
        self, publisher: Publisher, clone: Callable[[PublishResult], ClonedRepo]
    ) -> None:
        crlf = b"line one\r\nline two\r\n\x00tail\xff"
        files = samples.changed(samples.small_site(), {"data/crlf.bin": crlf, "data/notes.txt": b"a\r\nb\n"})
        repo = clone(publisher.publish(files))
        assert repo.files["img/logo.png"] == samples.png_bytes()
        assert repo.files["fonts/x.woff2"] == samples.woff2_bytes()
        assert repo.files["data/crlf.bin"] == crlf
        assert repo.files["data/notes.txt"] == b"a\r\nb\n"

    def test_unusual_paths_survive(self, publisher: Publisher, clone: Callable[[PublishResult], ClonedRepo]) -> None:
        odd = {
            "docs/with space.md": "spaces\n",
            "docs/ünïcödé-ç.txt": "unicode\n",
            "a/b/c/d/deep.txt": "deep\n",
        }
        files = samples.changed(samples.small_site(), odd)
        assert clone(publisher.publish(files)).files == _as_dict(files)

    def test_one_commit_per_change_and_linear_history(
        self, publisher: Publisher, clone: Callable[[PublishResult], ClonedRepo]
    ) -> None:
        base = samples.small_site()
        versions = [
            base,
            samples.changed(base, {"app.js": "console.log('v2');\n"}),
            samples.changed(base, {"app.js": "console.log('v2');\n", "about.html": "<p>about</p>\n"}),
            samples.changed(
                base, {"app.js": "console.log('v2');\n", "about.html": "<p>about</p>\n", "styles.css": None}
            ),
        ]
        results = [publisher.publish(files, message=f"version {n}") for n, files in enumerate(versions)]
        assert all(r.committed for r in results)
        assert len({r.commit_sha for r in results}) == len(versions)
        repo = clone(results[-1])
        assert repo.commits == [r.commit_sha for r in reversed(results)]  # exactly N+1 commits, in order
        assert repo.merges == []
        assert repo.files == _as_dict(versions[-1])

    def test_executable_mode_is_preserved(
        self, publisher: Publisher, clone: Callable[[PublishResult], ClonedRepo]
    ) -> None:
        script = {"scripts/run.sh": "#!/bin/sh\necho hello\n"}
        files = samples.changed(samples.small_site(), script, modes={"scripts/run.sh": "100755"})
        repo = clone(publisher.publish(files))
        assert repo.modes["scripts/run.sh"] == "100755"
        assert repo.modes["index.html"] == "100644"
        if os.name == "posix":
            assert os.access(repo.path / "scripts/run.sh", os.X_OK)
        plain = samples.changed(files, modes={"scripts/run.sh": "100644"})
        result = publisher.publish(plain)
        assert result.committed  # a mode-only change is a change
        assert clone(result).modes["scripts/run.sh"] == "100644"

    def test_remove_takes_away_what_a_run_created_and_a_second_remove_is_harmless(
        self,
        target: RepositoryTarget,
        publisher: Publisher,
        clone_url: Callable[[PublishResult], str],
        git_env: dict[str, str],
    ) -> None:
        result = publisher.publish(samples.small_site())
        url = clone_url(result)
        heads = remote_heads(url, git_env)
        assert heads
        target.remove(publisher.state)
        assert remote_heads(url, git_env) == ([] if result.created else heads)
        target.remove(publisher.state)
        assert remote_heads(url, git_env) == ([] if result.created else heads)
