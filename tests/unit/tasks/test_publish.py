"""Phase publish: the branch is made to hold the snapshot with at most one commit, and the project remembers
which commit and snapshot its branch holds."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from blocks.repositories.base import PublishResult, RepositoryState
from core.files import GeneratedFile
from core.models import Run
from core.runtime import get_snapshots, get_store
from tasks._phase import Reuse
from tasks.publish import head_unmoved, publish
from tests.conftest import require_tool
from tests.unit.tasks.conftest import TENANT


@pytest.fixture(autouse=True)
def _git() -> None:
    require_tool("git", "the local repository Block commits with git")


def snapshot(text: str) -> str:
    return get_snapshots(TENANT).put([GeneratedFile.text("index.html", text)]).snapshot_id


def published(run: Run, snapshot_id: str) -> PublishResult:
    return publish.fn(run.id, TENANT, run.project_id, snapshot_id, "local-git", "fp")


def test_a_snapshot_is_committed_and_the_project_remembers_the_head(queue_run: Callable[..., Run]) -> None:
    run = queue_run()
    first = snapshot("<h1>one</h1>")
    result = published(run, first)
    assert result.committed and result.state.head == result.commit_sha
    state = RepositoryState.model_validate(get_store().get_project(run.project_id).repository_state)
    assert (state.head, state.head_snapshot, state.created_by_run) == (result.commit_sha, first, run.id)
    head = subprocess.run(
        ["git", "-C", result.repository_url.removeprefix("file://"), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert head.stdout.strip() == result.commit_sha


def test_the_same_snapshot_again_makes_no_commit(queue_run: Callable[..., Run]) -> None:
    run = queue_run()
    first = published(run, snapshot("<h1>one</h1>"))
    again = published(run, snapshot("<h1>one</h1>"))
    assert not again.committed and again.commit_sha == first.commit_sha


def test_a_cached_publish_counts_only_while_the_branch_still_holds_its_snapshot(
    queue_run: Callable[..., Run],
) -> None:
    run = queue_run()
    one, two = snapshot("<h1>one</h1>"), snapshot("<h1>two</h1>")
    cached = published(run, one)
    store = get_store()

    def reuse() -> Reuse:
        return Reuse(snapshots=get_snapshots(TENANT), project=store.get_project(run.project_id))

    assert head_unmoved(cached, reuse())
    published(run, two)  # a later run moved the branch on
    assert not head_unmoved(cached, reuse())
    project = store.get_project(run.project_id)
    store.update(project, repository_state={})  # a project that remembers no head: nothing says it moved
    assert head_unmoved(cached, reuse())
