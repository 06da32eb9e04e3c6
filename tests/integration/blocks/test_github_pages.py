"""GitHubPagesSite against the fake GitHub: the deployment contract (behind Prism) and the issue's cases.

The contract suite runs with Prism and ``github.prism.openapi.json`` in front of the fake, failing on any
violation Prism logs; live sites are fetched from the fake's Pages route (its ``html_url``), as a browser
would reach ``<owner>.github.io``. The other cases talk to the fake directly (fast); they use only calls the
contract suite already proved, plus ``DELETE .../pages``, which the contract subset does not hold.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prefect.filesystems import LocalFileSystem
from prefect_github import GitHubCredentials
from pydantic import SecretStr

from blocks.naming import repository_name
from blocks.repositories.base import PublishRequest, RepositoryState
from blocks.repositories.github import GitHubRepositoryTarget
from blocks.targets.base import DeploymentTarget, SiteState
from blocks.targets.github_pages import GitHubPagesSite
from core.errors import AuthFailed, Conflict, DeployFailed, PomBoltError, ProviderRejected
from core.snapshots import SnapshotStore
from tests.conftest import require_prism
from tests.contracts import samples
from tests.contracts.deployment_suite import Deployer, DeploymentTargetContract
from tests.fakes.base import Response
from tests.fakes.github import FakeGitHub
from tests.fakes.prism import PrismProxy, contracts_dir
from tests.integration.blocks.test_github import assert_clean_prism_log, settled_log

pytestmark = pytest.mark.integration

TOKEN = "ghp_" + "Pg7" * 12  # 40 characters, shaped like a real token
LOGIN = "octo"
WRITES = ("POST", "PATCH", "PUT", "DELETE")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(users={TOKEN: LOGIN}, orgs={"acme"}) as service:
        yield service


@pytest.fixture(autouse=True)
def _reset(fake: FakeGitHub) -> None:
    fake.clear_scripts()
    fake.pages_build_polls, fake.pages_fail_next, fake.pages_on_private = 0, None, False


def make_site(api_url: str, token: str = TOKEN, **fields: object) -> GitHubPagesSite:
    settings: dict[str, object] = {"poll_interval": 0.02, "poll_max_interval": 0.1, "build_timeout": 5.0}
    settings.update(fields)
    creds = GitHubCredentials(token=SecretStr(token))
    return GitHubPagesSite(credentials=creds, api_url=api_url, **settings)


def writes(fake: FakeGitHub) -> int:
    return sum(fake.count(method) for method in WRITES)


@pytest.fixture
def snapshots(tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(LocalFileSystem(basepath=str(tmp_path / "storage")), "t1")


# --- the contract, with Prism checking every exchange ------------------------------------------------
@pytest.fixture(scope="module")
def prism(fake: FakeGitHub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrismProxy]:
    require_prism()  # a skip without it; a failure under CI=true
    proxy = PrismProxy(contracts_dir() / "github.prism.openapi.json", fake.url, log_dir=tmp_path_factory.mktemp("p"))
    with proxy:
        yield proxy


class TestGitHubPagesContract(DeploymentTargetContract):
    @pytest.fixture(autouse=True)
    def _no_violations(self, fake: FakeGitHub, prism: PrismProxy) -> Iterator[None]:
        """Fail when Prism logged any violation (request error, bad response, undeclared status)."""
        fake.clear_log()
        start = len(settled_log(prism))
        yield
        assert fake.requests(), "no request reached the fake through Prism"
        assert_clean_prism_log(settled_log(prism)[start:])

    @pytest.fixture
    def target(self, prism: PrismProxy) -> DeploymentTarget:
        return make_site(prism.url)


def test_pages_calls_pass_prism_including_409_and_a_build_still_running(
    fake: FakeGitHub, prism: PrismProxy, snapshots: SnapshotStore
) -> None:
    """Already-enabled (409) and a build that needs polling, through Prism: no violation logged."""
    start = len(settled_log(prism))
    fake.pages_build_polls = 2
    deployer = Deployer(make_site(prism.url), snapshots, "Prism Pages")
    deployer.deploy(samples.small_site())
    fake.script("GET", r"/repos/[^/]+/[^/]+/pages", Response(404, fake.error_body(404, "Not Found")))
    fake.clear_log()
    again = deployer.deploy(samples.changed(samples.small_site(), {"app.js": "p();\n"}))
    assert fake.last("POST", r".*/pages").status == 409
    assert fake.count("GET", r".*/pages/builds/latest") == 3 and again.files_uploaded == 1
    assert_clean_prism_log(settled_log(prism)[start:])


# --- the cases (direct to the fake: fast) ---------------------------------------------------
def test_block_identity_and_defaults() -> None:
    assert GitHubPagesSite.get_block_type_slug() == "pombolt-github-pages"
    site = make_site("https://api.github.com")
    assert (site.branch, site.private, site.repository, site.wait_for_build) == ("gh-pages", False, None, True)
    with pytest.raises(ValueError, match="repository name"):
        make_site("https://api.github.com", repository="octo/site")


def test_first_deploy_commits_the_site_to_gh_pages_and_enables_pages(
    fake: FakeGitHub, snapshots: SnapshotStore
) -> None:
    deployer = Deployer(make_site(fake.url), snapshots, "Pages App")
    fake.clear_log()
    result = deployer.deploy(samples.small_site())
    full = f"{LOGIN}/{repository_name('Pages App', deployer.project_id)}"
    repo = fake.repos[full.lower()]
    assert result.created and not repo.private and result.state.site_id == str(repo.id)
    assert fake.history(full, "gh-pages") == [result.deploy_id]  # one commit, parentless: only the site
    assert fake.pages[repo.id].branch == "gh-pages" and fake.pages[repo.id].path == "/"
    assert fake.last("POST", r".*/pages").json() == {"source": {"branch": "gh-pages", "path": "/"}}
    assert result.live_url == fake.pages_url(repo)
    assert (result.files_uploaded, result.bytes_uploaded) == (5, sum(len(f.content) for f in samples.small_site()))
    assert result.requests == fake.count()
    extra = result.state.extra
    assert extra["repository_created_by_run"] == extra["pages_enabled_by_run"] == result.state.created_by_run


def test_unchanged_redeploy_makes_no_write(fake: FakeGitHub, snapshots: SnapshotStore) -> None:
    deployer = Deployer(make_site(fake.url), snapshots, "Same Pages")
    first = deployer.deploy(samples.small_site())
    fake.clear_log()
    again = deployer.deploy(samples.small_site())
    assert writes(fake) == 0 and again.deploy_id == first.deploy_id and not again.created
    assert again.requests == fake.count() == 7  # diff 2, publish 3, Pages 1, build 1
    assert again.state.extra["pages_enabled_by_run"] == first.state.extra["pages_enabled_by_run"]


def test_counts_come_from_the_branch_head_not_from_the_previous_snapshot(
    fake: FakeGitHub, snapshots: SnapshotStore
) -> None:
    deployer = Deployer(make_site(fake.url), snapshots, "Diff Pages")
    first = deployer.deploy(samples.small_site())
    repo = fake.repos[str(first.state.extra["full_name"]).lower()]
    fake.commit_files(repo, "gh-pages", {"stray.txt": b"someone else", "app.js": b"edited();\n"}, "by hand")
    result = deployer.deploy(samples.small_site())
    assert (result.files_uploaded, result.bytes_uploaded, result.files_deleted) == (1, len(samples.APP_JS), 1)
    assert httpx.get(result.live_url + "stray.txt").status_code == 404
    assert httpx.get(result.live_url + "app.js").content == samples.APP_JS.encode()


def test_pages_already_enabled_by_the_owner_is_used_not_claimed(fake: FakeGitHub, snapshots: SnapshotStore) -> None:
    repo = fake.add_repo(LOGIN, "team-site", description="the owner's own")
    repo.private = False
    fake.commit_files(repo, "gh-pages", {"index.html": b"old"}, "old site")
    fake.enable_pages(repo)
    site = make_site(fake.url, repository="team-site")
    deployer = Deployer(site, snapshots, "Team")
    fake.clear_log()
    result = deployer.deploy(samples.small_site())
    assert fake.count("POST", r".*/pages") == 0 and not result.created
    assert "pages_enabled_by_run" not in result.state.extra and "repository_created_by_run" not in result.state.extra
    assert fake.history(repo.full_name, "gh-pages")[1:] != []  # on top of the owner's commit, fast-forward
    assert httpx.get(result.live_url).content == samples.INDEX_HTML.encode()
    site.remove(result.state)
    assert repo.id in fake.pages and repo.full_name.lower() in fake.repos  # nothing of this run to undo


def test_409_already_enabled_is_not_claimed_by_this_run(fake: FakeGitHub, snapshots: SnapshotStore) -> None:
    deployer = Deployer(make_site(fake.url), snapshots, "Race Pages")
    first = deployer.deploy(samples.small_site())
    kept = {k: v for k, v in first.state.extra.items() if k != "pages_enabled_by_run"}
    deployer.state = first.state.model_copy(update={"extra": kept})
    fake.script("GET", r"/repos/[^/]+/[^/]+/pages", Response(404, fake.error_body(404, "Not Found")))
    result = deployer.deploy(samples.changed(samples.small_site(), {"app.js": "race();\n"}))
    assert fake.last("POST", r".*/pages").status == 409
    assert "pages_enabled_by_run" not in result.state.extra and not result.created


def test_named_repository_that_does_not_exist_is_created_in_the_tokens_account(
    fake: FakeGitHub, snapshots: SnapshotStore
) -> None:
    name = "named-" + uuid.uuid4().hex[:6]
    site = make_site(fake.url, repository=name)
    result = Deployer(site, snapshots, "Named").deploy(samples.small_site())
    assert result.created and result.state.extra["full_name"] == f"{LOGIN}/{name}"
    assert result.live_url == fake.pages_url(fake.repos[f"{LOGIN}/{name}"])
    site.remove(result.state)
    assert f"{LOGIN}/{name}" not in fake.repos


def test_pages_serving_another_branch_is_a_conflict(fake: FakeGitHub, snapshots: SnapshotStore) -> None:
    repo = fake.add_repo(LOGIN, "docs-site")
    repo.private = False
    fake.enable_pages(repo, branch="main", path="/")
    with pytest.raises(Conflict, match=r"already serve main/.*change the repository's Pages source"):
        Deployer(make_site(fake.url, repository="docs-site"), snapshots, "Docs").deploy(samples.small_site())


def test_private_repository_on_a_free_plan_is_refused_with_advice(fake: FakeGitHub, snapshots: SnapshotStore) -> None:
    deployer = Deployer(make_site(fake.url, private=True), snapshots, "Private Pages")
    with pytest.raises(ProviderRejected, match=r"does not support GitHub Pages.*'private': false") as err:
        deployer.deploy(samples.small_site())
    assert not err.value.retryable


def test_deploy_waits_for_the_build_and_surfaces_an_errored_one(fake: FakeGitHub, snapshots: SnapshotStore) -> None:
    deployer = Deployer(make_site(fake.url), snapshots, "Slow Pages")
    fake.pages_build_polls = 3
    fake.clear_log()
    result = deployer.deploy(samples.small_site())
    assert fake.count("GET", r".*/pages/builds/latest") == 4
    assert httpx.get(result.live_url).content == samples.INDEX_HTML.encode()
    fake.pages_build_polls, fake.pages_fail_next = 0, "Page build failed: invalid front matter in index.html"
    with pytest.raises(DeployFailed, match="errored: Page build failed: invalid front matter"):
        deployer.deploy(samples.changed(samples.small_site(), {"index.html": "---\nbad\n"}))
    assert httpx.get(result.live_url).content == samples.INDEX_HTML.encode()  # the last good build stays live


def test_build_that_never_finishes_is_a_retryable_deploy_failure(fake: FakeGitHub, snapshots: SnapshotStore) -> None:
    fake.pages_build_polls = 10_000
    deployer = Deployer(make_site(fake.url, build_timeout=0.3), snapshots, "Stuck Pages")
    with pytest.raises(DeployFailed, match=r"not built after 0\.3 s") as err:
        deployer.deploy(samples.small_site())
    assert err.value.retryable


def test_site_shares_the_projects_own_repository_and_remove_only_turns_pages_off(
    fake: FakeGitHub, snapshots: SnapshotStore
) -> None:
    creds = GitHubCredentials(token=SecretStr(TOKEN))
    source = GitHubRepositoryTarget(credentials=creds, api_url=fake.url, private=False)
    deployer = Deployer(make_site(fake.url), snapshots, "Shared")
    files = samples.small_site()
    published = source.publish(
        snapshots,
        PublishRequest(
            tenant_id="t1",
            project_id=deployer.project_id,
            project_name="Shared",
            run_id="r0",
            snapshot_id=samples.store(snapshots, files),
        ),
        RepositoryState(),
    )
    result = deployer.deploy(files)
    assert result.state.site_id == published.state.repository_id  # adopted through the project's marker
    assert result.created and "repository_created_by_run" not in result.state.extra
    full = str(result.state.extra["full_name"])
    assert fake.history(full, "main") == [published.commit_sha]  # the source branch is untouched
    make_site(fake.url).remove(result.state)
    assert full.lower() in fake.repos and fake.repos[full.lower()].id not in fake.pages


def test_remove_deletes_only_a_repository_a_run_created(fake: FakeGitHub, snapshots: SnapshotStore) -> None:
    site = make_site(fake.url)
    result = Deployer(site, snapshots, "Remove Pages").deploy(samples.small_site())
    full = str(result.state.extra["full_name"]).lower()
    site.remove(SiteState(site_id=result.state.site_id, extra={"full_name": full}))
    assert full in fake.repos  # nothing recorded as created by a run: kept
    with pytest.raises(Conflict):  # the name now points at another repository: never deleted
        site.remove(SiteState(site_id="1", extra=result.state.extra))
    assert full in fake.repos
    site.remove(result.state)
    assert full not in fake.repos
    site.remove(result.state)  # already gone: nothing to do


def test_preflight_with_a_bad_token_fails_once_without_retry(fake: FakeGitHub) -> None:
    make_site(fake.url).preflight()
    fake.clear_log()
    with pytest.raises(AuthFailed, match="401") as err:
        make_site(fake.url, token="ghp_" + "Bad0" * 9).preflight()
    assert fake.count() == 1 and not err.value.retryable
    with pytest.raises(PomBoltError, match="organisation 'nobody'"):
        make_site(fake.url, owner="nobody").preflight()


def test_token_is_absent_from_logs_errors_and_results(
    fake: FakeGitHub, snapshots: SnapshotStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    deployer = Deployer(make_site(fake.url), snapshots, "Secret " + uuid.uuid4().hex[:4])
    result = deployer.deploy(samples.small_site())
    echo = {"message": f"echo Bearer {TOKEN} token={TOKEN} {TOKEN}", "documentation_url": "https://x"}
    fake.script("GET", r"/repos/[^/]+/[^/]+/pages", Response(404, fake.error_body(404, "Not Found")))
    fake.script("POST", r"/repos/[^/]+/[^/]+/pages", Response(422, echo))
    with pytest.raises(ProviderRejected) as rejected:
        deployer.deploy(samples.changed(samples.small_site(), {"app.js": "s();\n"}))
    fake.pages_fail_next = f"build log: {TOKEN}"
    with pytest.raises(DeployFailed) as failed:
        deployer.deploy(samples.changed(samples.small_site(), {"app.js": "t();\n"}))
    bad = "ghp_" + "Bad1" * 9
    with pytest.raises(AuthFailed) as auth:
        make_site(fake.url, token=bad).preflight()
    errors = [rejected.value, failed.value, auth.value]
    texts = [caplog.text, result.model_dump_json(), *(str(e) for e in errors), *(repr(e) for e in errors)]
    assert any("GET" in line for line in caplog.messages)  # the client did log its calls
    assert "build log: ***" in str(failed.value)
    for text in texts:
        assert TOKEN not in text and bad not in text
    assert TOKEN not in make_site(fake.url).model_dump_json()
