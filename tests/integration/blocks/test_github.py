"""GitHubRepositoryTarget against the fake GitHub: the repository contract (behind Prism) and the issue's cases."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prefect.filesystems import LocalFileSystem
from prefect_github import GitHubCredentials
from pydantic import SecretStr

from blocks.naming import repository_name
from blocks.repositories.base import PublishResult, RepositoryState, RepositoryTarget
from blocks.repositories.github import GitHubRepositoryTarget
from core.errors import AuthFailed, Conflict, PomBoltError, ProviderUnavailable
from core.snapshots import SnapshotStore
from tests.conftest import require_prism
from tests.contracts import samples
from tests.contracts.repository_suite import Publisher, RepositoryTargetContract, clone_repository
from tests.fakes.base import FaultPlan, Response
from tests.fakes.github import FakeGitHub, name_of
from tests.fakes.prism import PrismProxy, assert_no_violations, contracts_dir

pytestmark = pytest.mark.integration

TOKEN = "ghp_" + "Zq9" * 12  # 40 characters, shaped like a real token
LOGIN = "octo"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(users={TOKEN: LOGIN}, orgs={"acme"}) as service:
        yield service


def make_target(api_url: str, token: str = TOKEN, **fields: object) -> GitHubRepositoryTarget:
    creds = GitHubCredentials(token=SecretStr(token))
    return GitHubRepositoryTarget(credentials=creds, api_url=api_url, **fields)


@pytest.fixture
def snapshots(tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(LocalFileSystem(basepath=str(tmp_path / "storage")), "t1")


@pytest.fixture
def clone(fake: FakeGitHub, tmp_path: Path) -> Callable[[PublishResult], object]:
    counter = iter(range(1000))
    return lambda result: clone_repository(
        fake.clone_url(name_of(result.repository_url)), tmp_path / f"c{next(counter)}"
    )


def settled_log(prism: PrismProxy) -> str:
    """Prism's log once it stopped growing (it writes asynchronously); bounded to 3 s."""
    text, deadline = prism.log_text(), time.monotonic() + 3
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = prism.log_text()
        if now == text:
            break
        text = now
    return text


def assert_clean_prism_log(text: str) -> None:
    """Prism logs each violation as an error or warning line; none is allowed."""
    bad = [line for line in text.splitlines() if any(m in line.lower() for m in ("✖", "⚠", "violation", "warning"))]
    assert not bad, "Prism reported contract violations:\n" + "\n".join(bad[:20])


# --- the contract, with Prism checking every exchange ------------------------------------------------
@pytest.fixture(scope="module")
def prism(fake: FakeGitHub) -> Iterator[PrismProxy]:
    require_prism()  # a skip without it; a failure under CI=true
    with PrismProxy(contracts_dir() / "github.prism.openapi.json", fake.url) as proxy:
        yield proxy


class TestGitHubContract(RepositoryTargetContract):
    @pytest.fixture(autouse=True)
    def _no_violations(self, fake: FakeGitHub, prism: PrismProxy) -> Iterator[None]:
        """Fail when Prism logged any violation (request error, bad response, undeclared status)."""
        fake.clear_log()
        start = len(settled_log(prism))
        yield
        assert fake.requests(), "no request reached the fake through Prism"
        assert_clean_prism_log(settled_log(prism)[start:])

    @pytest.fixture
    def target(self, prism: PrismProxy) -> RepositoryTarget:
        return make_target(prism.url)

    @pytest.fixture
    def clone_url(self, fake: FakeGitHub) -> Callable[[PublishResult], str]:
        return lambda result: fake.clone_url(name_of(result.repository_url))


def test_prism_passes_every_call_of_a_publish_without_violations(
    fake: FakeGitHub, prism: PrismProxy, snapshots: SnapshotStore
) -> None:
    """Replays each call a publish made, through Prism, and fails on any sl-violations header."""
    fake.clear_log()
    publisher = Publisher(make_target(prism.url), snapshots, "Prism Check")
    publisher.publish(samples.small_site())
    publisher.publish(samples.changed(samples.small_site(), {"app.js": "x();\n", "styles.css": None}))
    calls = [(e.method, e.path, e.query, e.body) for e in fake.requests() if e.method == "GET"]
    assert len(calls) >= 4
    with httpx.Client(base_url=prism.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        for method, path, query, _ in calls:
            response = client.request(method, path, params=query)
            assert_no_violations(response.headers)
            assert response.status_code < 500, response.text
    # a write, replayed: an invalid tree entry is refused by Prism itself (contract check works)
    full = name_of(publisher.results[-1].repository_url)
    with httpx.Client(base_url=prism.url, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        bad = client.post(f"/repos/{full}/git/trees", json={"tree": [{"path": "a", "mode": "1", "type": "blob"}]})
        assert bad.status_code == 422 and "problem+json" in bad.headers["content-type"]
    with pytest.raises(AssertionError, match="violations"):
        assert_clean_prism_log(settled_log(prism))  # the log check used by the contract class does see it


# --- the cases (direct to the fake: fast) ---------------------------------------------------
def test_block_identity() -> None:
    assert GitHubRepositoryTarget.get_block_type_slug() == "pombolt-github-repository"


def test_new_repository_is_created_private_with_one_commit(
    fake: FakeGitHub, snapshots: SnapshotStore, clone: Callable[[PublishResult], object]
) -> None:
    publisher = Publisher(make_target(fake.url), snapshots, "New One")
    fake.clear_log()
    result = publisher.publish(samples.small_site())
    assert result.created and result.committed
    full = name_of(result.repository_url)
    repo = fake.repos[full.lower()]
    assert repo.private and full == f"{LOGIN}/{repository_name('New One', publisher.project_id)}"
    assert result.state.repository_id == str(repo.id)
    assert fake.history(full) == [result.commit_sha]
    assert result.requests == fake.count() and result.writes == fake.count("POST") + fake.count("PATCH")


def test_existing_repository_update_costs_five_requests_plus_one_tree(
    fake: FakeGitHub, snapshots: SnapshotStore
) -> None:
    publisher = Publisher(make_target(fake.url), snapshots, "Update Me")
    text_only = [f for f in samples.small_site() if f.path.endswith((".html", ".js", ".css"))]
    first = publisher.publish(text_only)
    fake.clear_log()
    second = publisher.publish(samples.changed(text_only, {"app.js": "changed();\n"}))
    assert second.committed and not second.created
    assert second.state.repository_id == first.state.repository_id
    assert (second.requests, second.writes) == (6, 3) == (fake.count(), fake.count("POST") + fake.count("PATCH"))
    assert fake.history(name_of(second.repository_url)) == [second.commit_sha, first.commit_sha]


def test_unchanged_snapshot_makes_three_reads_and_no_write(fake: FakeGitHub, snapshots: SnapshotStore) -> None:
    publisher = Publisher(make_target(fake.url), snapshots, "Same")
    publisher.publish(samples.small_site())
    fake.clear_log()
    again = publisher.publish(samples.small_site())
    assert not again.committed and again.writes == 0 and again.requests == 3
    assert {e.method for e in fake.requests()} == {"GET"}


def test_empty_repository_gets_its_first_commit_through_the_contents_api(
    fake: FakeGitHub, snapshots: SnapshotStore, clone: Callable[[PublishResult], object]
) -> None:
    publisher = Publisher(make_target(fake.url), snapshots, "Empty Repo")
    name = repository_name("Empty Repo", publisher.project_id)
    repo = fake.add_repo(LOGIN, name, auto_init=False)
    publisher.state = RepositoryState(repository_id=str(repo.id), extra={"full_name": repo.full_name})
    fake.clear_log()
    result = publisher.publish(samples.small_site())
    assert any(e.status == 409 and "empty" in e.response_body.decode() for e in fake.requests())
    assert fake.count("PUT", r".*/contents/README.md") == 1
    assert fake.history(repo.full_name) == [result.commit_sha]  # the placeholder was replaced
    assert clone(result).files == {f.path: f.content for f in samples.small_site()}  # type: ignore[attr-defined]


def test_name_taken_by_a_foreign_repository_is_a_conflict_and_nothing_is_written(
    fake: FakeGitHub, snapshots: SnapshotStore
) -> None:
    publisher = Publisher(make_target(fake.url), snapshots, "Taken")
    foreign = fake.add_repo(LOGIN, repository_name("Taken", publisher.project_id), description="mine, hands off")
    before = fake.history(foreign.full_name)
    fake.clear_log()
    with pytest.raises(Conflict, match="not this project's"):
        publisher.publish(samples.small_site())
    assert fake.count("POST") + fake.count("PATCH") + fake.count("PUT") + fake.count("DELETE") == 0
    assert fake.history(foreign.full_name) == before


def test_recorded_repository_replaced_by_another_with_the_same_name_is_a_conflict(
    fake: FakeGitHub, snapshots: SnapshotStore
) -> None:
    publisher = Publisher(make_target(fake.url), snapshots, "Swapped")
    first = publisher.publish(samples.small_site())
    full = name_of(first.repository_url)
    del fake.repos[full.lower()]
    fake.add_repo(LOGIN, full.split("/")[1])
    with pytest.raises(Conflict):
        publisher.publish(samples.changed(samples.small_site(), {"app.js": "y();\n"}))


def test_binary_files_go_as_blobs_and_unchanged_ones_are_not_uploaded_again(
    fake: FakeGitHub, snapshots: SnapshotStore
) -> None:
    publisher = Publisher(make_target(fake.url), snapshots, "Binary")
    publisher.publish(samples.small_site())
    fake.clear_log()
    publisher.publish(samples.changed(samples.small_site(), {"index.html": "<p>new</p>\n"}))
    assert fake.count("POST", r".*/git/blobs") == 0  # both binaries already in the head tree
    assert fake.count("GET", r".*/git/trees/.*") == 1


def test_502s_are_retried_and_the_result_is_exact(
    fake: FakeGitHub, snapshots: SnapshotStore, clone: Callable[[PublishResult], object]
) -> None:
    publisher = Publisher(make_target(fake.url), snapshots, "Flaky")
    fake.set_fault_plan(FaultPlan(seed=7, rates={502: 0.4}, max_faults=4))
    try:
        result = publisher.publish(samples.small_site())
    finally:
        fake.clear_faults()
    assert sum(1 for e in fake.requests() if e.faulted == "502") == 4
    assert clone(result).files == {f.path: f.content for f in samples.small_site()}  # type: ignore[attr-defined]
    assert fake.history(name_of(result.repository_url)) == [result.commit_sha]


def test_secondary_rate_limit_waits_for_retry_after(fake: FakeGitHub, snapshots: SnapshotStore) -> None:
    publisher = Publisher(make_target(fake.url), snapshots, "Limited")
    publisher.publish(samples.small_site())
    body = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}
    fake.script("POST", r".*/git/trees", Response(403, body, {"Retry-After": "1"}))
    started = time.monotonic()
    result = publisher.publish(samples.changed(samples.small_site(), {"app.js": "z();\n"}))
    assert result.committed and time.monotonic() - started >= 1.0
    assert fake.pending_scripts() == 0


def test_branch_moved_before_the_ref_update_is_retried_once_on_top(
    fake: FakeGitHub, snapshots: SnapshotStore, clone: Callable[[PublishResult], object]
) -> None:
    publisher = Publisher(make_target(fake.url), snapshots, "Moved")
    first = publisher.publish(samples.small_site())
    full = name_of(first.repository_url)
    other: list[str] = []
    fake.before_update_ref = lambda repo: other.append(fake.commit_files(repo, "main", {"x.txt": b"x"}, "other"))
    files = samples.changed(samples.small_site(), {"app.js": "moved();\n"})
    result = publisher.publish(files)
    history = fake.history(full)
    assert history[:3] == [result.commit_sha, other[0], first.commit_sha]  # on top, nothing forced away
    assert clone(result).files == {f.path: f.content for f in files}  # type: ignore[attr-defined]
    assert fake.count("PATCH") >= 2 and not any(e.json().get("force") for e in fake.requests("PATCH")[-2:])


def test_bad_token_fails_in_preflight_without_retry(fake: FakeGitHub) -> None:
    fake.clear_log()
    with pytest.raises(AuthFailed, match="401") as err:
        make_target(fake.url, token="ghp_" + "Bad0" * 9).preflight()
    assert fake.count() == 1 and not err.value.retryable


def test_preflight_checks_the_organisation(fake: FakeGitHub) -> None:
    make_target(fake.url, owner="acme").preflight()
    with pytest.raises(PomBoltError, match="organisation 'nobody'"):
        make_target(fake.url, owner="nobody").preflight()


def test_organisation_repository_is_created_in_the_org(fake: FakeGitHub, snapshots: SnapshotStore) -> None:
    result = Publisher(make_target(fake.url, owner="acme"), snapshots, "Org App").publish(samples.small_site())
    assert name_of(result.repository_url).startswith("acme/")


def test_crash_between_commit_and_ref_update_finishes_without_a_second_commit(
    fake: FakeGitHub, snapshots: SnapshotStore
) -> None:
    publisher = Publisher(make_target(fake.url), snapshots, "Crashy")
    first = publisher.publish(samples.small_site())
    files = samples.changed(samples.small_site(), {"app.js": "crash();\n"})
    fake.set_fault_plan(FaultPlan(only=("PATCH", r".*"), drop_rate=1.0, max_faults=1))
    fake.clear_log()
    try:
        with pytest.raises(ProviderUnavailable):
            publisher.publish(files)
    finally:
        fake.clear_faults()
    assert fake.count("POST", r".*/git/commits") == 1
    result = publisher.publish(files)
    assert fake.count("POST", r".*/git/commits") == 1  # the re-run reused the commit
    assert fake.history(name_of(result.repository_url)) == [result.commit_sha, first.commit_sha]


def test_remove_deletes_only_a_repository_the_project_created(fake: FakeGitHub, snapshots: SnapshotStore) -> None:
    target = make_target(fake.url)
    result = Publisher(target, snapshots, "Remove Me").publish(samples.small_site())
    target.remove(RepositoryState(repository_id=result.state.repository_id, extra=result.state.extra))
    assert name_of(result.repository_url).lower() in fake.repos  # not created by a run: kept
    target.remove(result.state)
    assert name_of(result.repository_url).lower() not in fake.repos


def test_token_is_absent_from_logs_errors_and_results(
    fake: FakeGitHub, snapshots: SnapshotStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    publisher = Publisher(make_target(fake.url), snapshots, "Secret " + uuid.uuid4().hex[:4])
    result = publisher.publish(samples.small_site())
    fake.script("POST", r".*/git/trees", Response(422, {"message": f"echo Bearer {TOKEN} token={TOKEN}"}))
    with pytest.raises(PomBoltError) as err:
        publisher.publish(samples.changed(samples.small_site(), {"app.js": "s();\n"}))
    bad = "ghp_" + "Bad1" * 9
    with pytest.raises(AuthFailed) as auth:
        make_target(fake.url, token=bad).preflight()
    texts = [caplog.text, str(err.value), repr(err.value), str(auth.value), result.model_dump_json()]
    assert any("GET" in line for line in caplog.messages)  # the client did log its calls
    for text in texts:
        assert TOKEN not in text and bad not in text
    assert TOKEN not in make_target(fake.url).model_dump_json()
