"""``pombolt run --repository <saved GitHub Block>`` against the fake GitHub, through the real CLI and Prefect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect_github import GitHubCredentials
from pydantic import SecretStr

from core.runtime import get_snapshots, get_store
from core.settings import get_settings
from tests.contracts.repository_suite import clone_repository
from tests.e2e.test_pipeline import pombolt
from tests.fakes.github import FakeGitHub, name_of

TOKEN = "ghp_" + "E2e" * 12


@pytest.fixture
def fake(data_dir: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(users={TOKEN: "octo"}) as service:
        yield service
    from blocks.targets.static_host import stop

    stop(get_settings())


def save_github(fake: FakeGitHub, name: str, token: str) -> None:
    from blocks.catalog import save_block
    from blocks.repositories.github import GitHubRepositoryTarget
    from usecases.setup import ensure_limits

    ensure_limits()  # what `pombolt init` does: the github-api rate limit the Block's writes pass
    store = get_store()
    store.ensure_tenant(get_settings().default_tenant)
    block = GitHubRepositoryTarget(credentials=GitHubCredentials(token=SecretStr(token)), api_url=fake.url)
    save_block(store, get_settings().default_tenant, name, block)


def test_run_publishes_one_commit_to_the_fake_github(fake: FakeGitHub, tmp_path: Path) -> None:
    save_github(fake, "gh", TOKEN)
    code, report, err = pombolt("run", "a counter app", "--name", "gh-counter", "--repository", "gh", "--json")
    assert code == 0, err
    assert report and report["status"] == "verified"
    full = name_of(report["repository_url"])
    assert fake.history(full) == [report["commit_sha"]]
    run = get_store().get_run(report["run_id"])
    snapshot = {f.path: f.content for f in get_snapshots(run.tenant_id).files(run.snapshot_id)}
    assert clone_repository(fake.clone_url(full), tmp_path / "clone").files == snapshot
    assert TOKEN not in err and TOKEN not in str(report)


def test_bad_token_fails_in_preflight_before_generation(fake: FakeGitHub) -> None:
    save_github(fake, "gh-bad", "ghp_" + "Nope" * 9)
    code, report, err = pombolt("run", "a counter app", "--name", "gh-bad", "--repository", "gh-bad", "--json")
    assert code != 0
    assert report is None or report["status"] == "failed"
    assert fake.count("GET", "/user") == 1 and fake.count("POST") == 0
    text = f"{err} {report}"
    assert "preflight" in text and "401" in text
