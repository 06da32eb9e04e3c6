"""LocalGitRepository: the repository contract plus what is specific to local bare repositories."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from blocks.naming import repository_name
from blocks.repositories.base import PublishRequest, RepositoryState, RepositoryTarget
from blocks.repositories.local_git import LocalGitRepository
from core.errors import ConfigError, Conflict, ProviderError
from core.settings import get_settings
from core.snapshots import SnapshotStore
from tests.contracts import samples
from tests.contracts.repository_suite import Publisher, RepositoryTargetContract, git_environment

pytestmark = pytest.mark.integration


@pytest.fixture
def repos(tmp_path: Path) -> Path:
    return tmp_path / "repos"


class TestLocalGitContract(RepositoryTargetContract):
    @pytest.fixture
    def target(self, repos: Path) -> RepositoryTarget:
        return LocalGitRepository(root=str(repos))


@pytest.fixture
def target(repos: Path) -> LocalGitRepository:
    return LocalGitRepository(root=str(repos))


@pytest.fixture
def snapshots(tmp_path: Path) -> SnapshotStore:
    from prefect.filesystems import LocalFileSystem

    return SnapshotStore(LocalFileSystem(basepath=str(tmp_path / "storage")), "t1")


def test_block_identity() -> None:
    assert LocalGitRepository.get_block_type_slug() == "pombolt-local-git"
    assert LocalGitRepository.get_block_type_name() == "Pom-Bolt Local Git Repository"


def test_bare_repository_layout_head_and_url(target: LocalGitRepository, snapshots: SnapshotStore, repos: Path) -> None:
    publisher = Publisher(target, snapshots, "Shop Front")
    result = publisher.publish(samples.small_site())
    name = repository_name("Shop Front", publisher.project_id)
    git_dir = repos / "t1" / f"{name}.git"
    assert result.state.repository_id == f"t1/{name}"
    assert result.repository_url == git_dir.as_uri()
    assert (git_dir / "HEAD").read_text().strip() == "ref: refs/heads/main"
    assert not (git_dir / "index").exists()  # built without a work tree
    assert result.state.created_by_run and result.writes == 1


def test_a_second_project_gets_another_repository(target: LocalGitRepository, snapshots: SnapshotStore) -> None:
    first = Publisher(target, snapshots, "Same Name").publish(samples.small_site())
    second = Publisher(target, snapshots, "Same Name").publish(samples.small_site())
    assert second.created
    assert first.state.repository_id != second.state.repository_id
    assert first.repository_url != second.repository_url


def test_state_from_an_earlier_run_is_reused_even_when_the_folder_was_lost(
    target: LocalGitRepository, snapshots: SnapshotStore, repos: Path
) -> None:
    publisher = Publisher(target, snapshots, "Resilient")
    first = publisher.publish(samples.small_site())
    target.remove(first.state)
    again = publisher.publish(samples.small_site())
    assert again.state.repository_id == first.state.repository_id
    assert again.created and again.committed
    assert len(list((repos / "t1").iterdir())) == 1


def test_state_of_another_tenant_is_refused(target: LocalGitRepository, snapshots: SnapshotStore) -> None:
    request = PublishRequest(
        tenant_id="t1",
        project_id=uuid.uuid4().hex,
        project_name="x",
        run_id="r",
        snapshot_id=samples.store(snapshots, samples.small_site()),
    )
    with pytest.raises(Conflict, match="another tenant"):
        target.publish(snapshots, request, RepositoryState(repository_id="t2/x-1234"))
    with pytest.raises(ConfigError, match="not a local-git id"):
        target.publish(snapshots, request, RepositoryState(repository_id="../../etc"))


def test_commit_carries_author_and_trailers(target: LocalGitRepository, snapshots: SnapshotStore) -> None:
    custom = LocalGitRepository(root=target.root, author_name="Robo", author_email="robo@example.test")
    result = Publisher(custom, snapshots, "Authored").publish(samples.small_site(), message="First version")
    snapshot_id = samples.store(snapshots, samples.small_site())
    git_dir = Path(result.repository_url.removeprefix("file://"))
    log = subprocess.run(
        ["git", f"--git-dir={git_dir}", "log", "-1", "--format=%an <%ae>%n%B"],
        capture_output=True,
        env=git_environment(),
        check=True,
    ).stdout.decode()
    assert log.startswith("Robo <robo@example.test>\nFirst version\n")
    assert f"Pombolt-Snapshot: {snapshot_id}" in log


def test_delete_removes_the_repository_and_ignores_missing(
    target: LocalGitRepository, snapshots: SnapshotStore
) -> None:
    result = Publisher(target, snapshots, "Short Lived").publish(samples.small_site())
    git_dir = Path(result.repository_url.removeprefix("file://"))
    target.remove(result.state)
    assert not git_dir.exists()
    target.remove(result.state)  # already gone: nothing to do
    target.remove(RepositoryState())


def test_git_failures_become_provider_errors_with_gits_message(
    target: LocalGitRepository, snapshots: SnapshotStore
) -> None:
    publisher = Publisher(target, snapshots, "Broken")
    git_dir = Path(publisher.publish(samples.small_site()).repository_url.removeprefix("file://"))
    shutil.rmtree(git_dir / "objects")
    (git_dir / "objects").write_text("not a folder")
    with pytest.raises(ProviderError, match="not a git repository") as caught:
        publisher.publish(samples.changed(samples.small_site(), {"app.js": "x"}))
    assert caught.value.provider == "local-git" and not caught.value.retryable


def test_preflight_creates_the_root(repos: Path) -> None:
    LocalGitRepository(root=str(repos / "deeper")).preflight()
    assert (repos / "deeper").is_dir()


def test_preflight_refuses_an_unwritable_root(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="not writable"):
        LocalGitRepository(root=str(blocker / "repos")).preflight()


def test_preflight_without_git_on_path(repos: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(ConfigError, match="git is not installed"):
        LocalGitRepository(root=str(repos)).preflight()


def test_default_root_is_in_the_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("POMBOLT_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    try:
        assert LocalGitRepository().root_path() == (tmp_path / "data" / "repos").resolve()
    finally:
        get_settings.cache_clear()


def test_invalid_branch_is_refused() -> None:
    with pytest.raises(ValueError, match="branch"):
        LocalGitRepository(branch="bad..name")
