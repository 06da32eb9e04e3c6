"""``pombolt run --target <saved GitHubPagesSite>`` against the fake GitHub, through the real CLI and Prefect.

The site lands as one commit on ``gh-pages``, Pages is enabled through the API, and ``verify`` fetches the
Pages URL the fake serves. A second identical run deploys again and writes nothing to GitHub. With
``--repository <saved GitHubRepositoryTarget>`` too, source and site share the project's repository.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.blocks.core import Block
from prefect_github import GitHubCredentials
from pydantic import SecretStr

from core.settings import get_settings
from tests.e2e.test_pipeline import pombolt
from tests.fakes.github import FakeGitHub, name_of

pytestmark = pytest.mark.e2e

TOKEN = "ghp_" + "Gp3" * 12
WRITES = ("POST", "PATCH", "PUT", "DELETE")


@pytest.fixture
def fake(data_dir: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(users={TOKEN: "octo"}) as service:
        yield service
    from blocks.targets.static_host import stop

    stop(get_settings())


def save(name: str, block: Block) -> None:
    from blocks.catalog import save_block
    from core.runtime import get_store
    from usecases.setup import ensure_limits

    ensure_limits()  # what `pombolt init` does: the github-api rate limit the Block's writes pass
    store = get_store()
    store.ensure_tenant(get_settings().default_tenant)
    save_block(store, get_settings().default_tenant, name, block)


def pages_block(fake: FakeGitHub) -> Block:
    from blocks.targets.github_pages import GitHubPagesSite

    creds = GitHubCredentials(token=SecretStr(TOKEN))
    return GitHubPagesSite(credentials=creds, api_url=fake.url, poll_interval=0.05, poll_max_interval=0.2)


def test_run_deploys_to_github_pages_and_an_unchanged_rerun_writes_nothing(fake: FakeGitHub) -> None:
    save("ghp", pages_block(fake))
    code, report, err = pombolt("run", "a counter app", "--name", "ghp-counter", "--target", "ghp", "--json")
    assert code == 0, err
    assert report and report["status"] == "verified"
    [repo] = fake.repos.values()
    assert report["live_url"] == fake.pages_url(repo) and fake.pages[repo.id].branch == "gh-pages"
    assert len(fake.history(repo.full_name, "gh-pages")) == 1
    fake.clear_log()
    code, again, err = pombolt("run", "a counter app", "--name", "ghp-counter", "--target", "ghp", "--json")
    assert code == 0, err
    assert again and again["status"] == "verified" and again["live_url"] == report["live_url"]
    assert fake.count("GET", r".*/pages/builds/latest") >= 1  # it did deploy again ...
    assert sum(fake.count(m) for m in WRITES) == 0  # ... and wrote nothing
    assert TOKEN not in err and TOKEN not in str(report) and TOKEN not in str(again)


def test_source_and_site_share_the_projects_repository(fake: FakeGitHub) -> None:
    from blocks.repositories.github import GitHubRepositoryTarget

    creds = GitHubCredentials(token=SecretStr(TOKEN))
    save("gh-src", GitHubRepositoryTarget(credentials=creds, api_url=fake.url, private=False))
    save("ghp-site", pages_block(fake))
    args = ("--name", "ghp-shared", "--repository", "gh-src", "--target", "ghp-site", "--json")
    code, report, err = pombolt("run", "a notes app", *args)
    assert code == 0, err
    assert report and report["status"] == "verified"
    full = name_of(report["repository_url"])
    assert list(fake.repos) == [full.lower()]  # one repository: main holds the source, gh-pages the site
    assert fake.history(full, "main") == [report["commit_sha"]]
    assert report["live_url"] == fake.pages_url(fake.repos[full.lower()])
