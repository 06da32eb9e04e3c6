"""GitRemoteTarget against a local git daemon: the repository contract plus push safety and secrets."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prefect.filesystems import LocalFileSystem
from pydantic import SecretStr

from blocks.repositories.base import PublishResult, RepositoryTarget
from blocks.repositories.git_remote import GitRemoteTarget
from core.errors import PomBoltError
from core.snapshots import SnapshotStore
from tests.conftest import require_tool
from tests.contracts import samples
from tests.contracts.repository_suite import Publisher, RepositoryTargetContract, git_environment
from tests.fakes.git_server import GitDaemon

pytestmark = pytest.mark.integration

TOKEN = "glpat-" + "Xy7" * 8


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitDaemon]:
    require_tool("git", "GitRemoteTarget pushes with git")
    with GitDaemon(tmp_path_factory.mktemp("daemon")) as server:
        yield server


class TestGitRemoteContract(RepositoryTargetContract):
    @pytest.fixture
    def target(self, daemon: GitDaemon) -> RepositoryTarget:
        return GitRemoteTarget(url=daemon.create(uuid.uuid4().hex[:12]), token=SecretStr(TOKEN))

    def test_first_publish_creates_a_commit_and_the_clone_equals_the_snapshot(
        self, publisher: Publisher, clone: Callable[[PublishResult], object]
    ) -> None:
        # GitRemoteTarget pushes to an existing remote, so ``created`` is False; the rest is the contract.
        files = samples.small_site()
        result = publisher.publish(files)
        assert result.committed and not result.created
        repo = clone(result)
        assert repo.files == {f.path: f.content for f in files}  # type: ignore[attr-defined]
        assert repo.commits == [result.commit_sha]  # type: ignore[attr-defined]


@pytest.fixture
def snapshots(tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(LocalFileSystem(basepath=str(tmp_path / "storage")), "t1")


def test_block_identity() -> None:
    assert GitRemoteTarget.get_block_type_slug() == "pombolt-git-remote"


def test_url_with_credentials_is_refused() -> None:
    with pytest.raises(ValueError, match="credentials"):
        GitRemoteTarget(url="https://user:secret@example.com/r.git")


def test_a_later_publish_builds_on_what_others_pushed(
    daemon: GitDaemon, snapshots: SnapshotStore, tmp_path: Path
) -> None:
    url = daemon.create("moved-" + uuid.uuid4().hex[:6])
    target = GitRemoteTarget(url=url)
    publisher = Publisher(target, snapshots, "Moved")
    first = publisher.publish(samples.small_site())
    # someone else pushes meanwhile: our next push is built on what we fetched, so it must be on top
    env = git_environment()
    work = tmp_path / "other"
    subprocess.run(["git", "clone", "--quiet", url, str(work)], check=True, env=env)
    (work / "x.txt").write_text("x")
    for args in (["add", "x.txt"], ["-c", "user.name=o", "-c", "user.email=o@x", "commit", "-qm", "o"], ["push", "-q"]):
        subprocess.run(["git", "-C", str(work), *args], check=True, env=env)
    result = publisher.publish(samples.changed(samples.small_site(), {"app.js": "n();\n"}))
    log = subprocess.run(["git", "-C", str(work), "pull", "-q"], env=env, check=True)
    assert log.returncode == 0
    history = subprocess.run(["git", "-C", str(work), "rev-list", "HEAD"], env=env, capture_output=True, text=True)
    assert history.stdout.split()[0] == result.commit_sha and first.commit_sha in history.stdout


def test_token_reaches_git_only_through_the_environment(daemon: GitDaemon, snapshots: SnapshotStore) -> None:
    target = GitRemoteTarget(url=daemon.url("does-not-exist"), token=SecretStr(TOKEN))
    with pytest.raises(PomBoltError) as err:
        target.preflight()
    assert TOKEN not in str(err.value)
    git = target._git(Path("/tmp"))
    assert git.env["GIT_CONFIG_VALUE_0"] == f"Authorization: Bearer {TOKEN}"
    assert TOKEN not in target.url and TOKEN not in str(target.model_dump())
