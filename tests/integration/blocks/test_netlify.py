"""NetlifySite against a stateful fake Netlify, with Prism and Netlify's contract in front of the API.

Every exchange goes through ``prism proxy netlify.prism.openapi.json <fake>/api/v1 --errors``; a test fails
when Prism reports anything (an ``sl-violations`` header, or an error or warning in its log). Prism corrupts
non-UTF-8 request bodies (it decodes them as text), so uploads of binary files bypass it (``PrismBinaryBypass``);
text uploads and every JSON call are checked.
Live sites are fetched from the fake directly (its ``ssl_url``), as a browser would reach Netlify's CDN.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from blocks.targets.base import DeploymentTarget, SiteState
from blocks.targets.netlify import NetlifySite
from core.concurrency import NETLIFY_LIMIT, provider_slot
from core.errors import AuthFailed, DeployFailed
from core.files import GeneratedFile
from core.snapshots import SnapshotStore
from tests.contracts import samples
from tests.contracts.deployment_suite import Deployer, DeploymentTargetContract
from tests.fakes.base import Response
from tests.fakes.netlify import FakeNetlify
from tests.integration.blocks._prism_stack import PrismStack, prism_stack

pytestmark = pytest.mark.integration

TOKEN = "nfp_fake_netlify_token_0123456789abcdef"


Stack = PrismStack[FakeNetlify]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    log_dir = tmp_path_factory.mktemp("prism")
    with FakeNetlify(tokens={TOKEN}) as fake:
        with prism_stack(fake, "netlify.prism.openapi.json", fake.api_url, log_dir) as stack:
            yield stack


@pytest.fixture(autouse=True)
def contract_clean(stack: Stack) -> Iterator[None]:
    """Reset the fake's knobs; fail the test on anything Prism reported during it."""
    stack.problems()
    stack.front.bypassed.clear()
    stack.fake.clear_scripts()
    stack.fake.processing_polls, stack.fake.stuck, stack.fake.fail_next = 1, False, None
    yield
    problems = stack.problems()
    assert not problems, "Prism reported contract problems:\n" + "\n".join(problems)


def _site(stack: Stack, **options: object) -> NetlifySite:
    settings: dict[str, object] = {"poll_interval": 0.02, "poll_max_interval": 0.1, "ready_timeout": 5.0}
    settings.update(options)
    return NetlifySite(token=SecretStr(TOKEN), api_url=stack.api_url, **settings)  # type: ignore[arg-type]


class TestNetlifyContract(DeploymentTargetContract):
    @pytest.fixture
    def target(self, stack: Stack) -> DeploymentTarget:
        return _site(stack)


@pytest.fixture
def snapshots(tmp_path: Path) -> SnapshotStore:
    from prefect.filesystems import LocalFileSystem

    return SnapshotStore(LocalFileSystem(basepath=str(tmp_path / "storage")), "t1")


@pytest.fixture
def deployer(stack: Stack, snapshots: SnapshotStore) -> Deployer:
    return Deployer(_site(stack), snapshots, "Netlify App")


def test_block_identity() -> None:
    assert NetlifySite.get_block_type_slug() == "pombolt-netlify"
    assert NetlifySite(token=SecretStr("x")).api_url == "https://api.netlify.com/api/v1"


def test_digest_map_uses_sha1_of_the_bytes_and_uploads_only_required(stack: Stack, deployer: Deployer) -> None:
    files = [
        GeneratedFile.text("index.html", "<h1>hi</h1>\n"),
        GeneratedFile.text("a/same.txt", "same\n"),
        GeneratedFile.text("b/same.txt", "same\n"),
    ]
    result = deployer.deploy(files)
    body = stack.fake.last("POST", r"/api/v1/sites/[^/]+/deploys").json()
    assert body["files"]["/index.html"] == "5f1c1bcbe8be31cc950ac52c2765435ce4434c67"  # FLOWS.md test vector
    assert set(body["files"]) == {"/index.html", "/a/same.txt", "/b/same.txt"}
    uploads = stack.fake.requests("PUT", rf"/api/v1/deploys/{result.deploy_id}/files/.+")
    assert len(uploads) == result.files_uploaded == 2  # identical bytes go up once
    assert result.bytes_uploaded == 12 + 5
    assert {hashlib.sha1(u.body).hexdigest() for u in uploads} == set(body["files"].values())
    assert stack.front.bypassed == []  # text uploads went through Prism


def test_binary_uploads_arrive_byte_exact(stack: Stack, deployer: Deployer) -> None:
    result = deployer.deploy(samples.small_site())
    uploads = {
        u.path.rsplit("/files/", 1)[1]: u.body
        for u in stack.fake.requests("PUT", r"/api/v1/deploys/.+")
        if u.path.startswith(f"/api/v1/deploys/{result.deploy_id}/")
    }
    assert uploads["img/logo.png"] == samples.png_bytes()
    assert uploads["fonts/x.woff2"] == samples.woff2_bytes()
    assert sorted(p.rsplit("/files/", 1)[1] for p in stack.front.bypassed) == ["fonts/x.woff2", "img/logo.png"]


def test_the_site_is_created_once_and_found_by_name_without_state(
    stack: Stack, deployer: Deployer, snapshots: SnapshotStore
) -> None:
    first = deployer.deploy(samples.small_site())
    assert first.created and first.state.created_by_run
    lost = Deployer(deployer.target, snapshots, deployer.project_name)
    lost.project_id = deployer.project_id  # same project, its site id forgotten
    again = lost.deploy(samples.small_site())
    assert not again.created and again.state.site_id == first.state.site_id
    assert again.files_uploaded == 0
    names = [s["name"] for s in stack.fake.sites.values()]
    assert names.count(stack.fake.sites[str(first.state.site_id)]["name"]) == 1


def test_429_with_retry_after_is_honoured(stack: Stack, deployer: Deployer) -> None:
    stack.fake.script(
        "POST",
        r"/api/v1/sites/[^/]+/deploys",
        Response(429, {"code": 429, "message": "slow down"}, {"Retry-After": "1"}),
    )
    started = time.monotonic()
    result = deployer.deploy(samples.small_site())
    assert time.monotonic() - started >= 0.9
    assert stack.fake.count("POST", r"/api/v1/sites/[^/]+/deploys") >= 2
    assert result.files_uploaded == 5


def test_a_deploy_stuck_in_processing_fails_naming_the_deploy(stack: Stack, snapshots: SnapshotStore) -> None:
    stack.fake.stuck = True
    deployer = Deployer(_site(stack, ready_timeout=0.5), snapshots, "Stuck App")
    started = time.monotonic()
    with pytest.raises(DeployFailed) as info:
        deployer.deploy(samples.small_site())
    assert time.monotonic() - started < 3
    deploy_id = json.loads(stack.fake.last("POST", r"/api/v1/sites/[^/]+/deploys").response_body)["id"]
    assert f"Netlify deploy {deploy_id} of site " in info.value.message
    assert "still 'processing' after 0.5 s" in info.value.message
    assert info.value.retryable


def test_an_error_state_carries_netlifys_message(stack: Stack, deployer: Deployer) -> None:
    stack.fake.fail_next = "Failed to process _redirects: line 3 is invalid"
    with pytest.raises(DeployFailed, match="failed \\(error\\): Failed to process _redirects: line 3 is invalid"):
        deployer.deploy(samples.small_site())


def test_a_bad_token_fails_preflight_without_showing_it(stack: Stack) -> None:
    wrong = "nfp_wrong_token_value_987654321"
    with pytest.raises(AuthFailed) as info:
        NetlifySite(token=SecretStr(wrong), api_url=stack.api_url).preflight()
    assert wrong not in str(info.value) and TOKEN not in str(info.value)
    assert "401" in info.value.message


def test_the_token_travels_only_in_the_authorization_header(stack: Stack, deployer: Deployer) -> None:
    stack.fake.clear_log()
    result = deployer.deploy(samples.small_site())
    log = stack.fake.requests()
    assert log and all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in log)
    for entry in log:
        assert TOKEN not in entry.path and TOKEN not in str(entry.query) and TOKEN.encode() not in entry.body
    assert TOKEN not in result.model_dump_json()
    assert TOKEN not in repr(deployer.target) and TOKEN not in str(deployer.target.model_dump())


def test_remove_deletes_the_site(stack: Stack, deployer: Deployer) -> None:
    result = deployer.deploy(samples.small_site())
    target = deployer.target
    target.remove(result.state)
    assert str(result.state.site_id) not in stack.fake.sites
    target.remove(result.state)  # already gone: nothing to do
    target.remove(SiteState())


def test_rate_limit_helper_is_a_no_op_outside_a_prefect_run() -> None:
    # Outside a flow or task run there is no server holding 'netlify-api'; a strict limit would fail here.
    provider_slot(NETLIFY_LIMIT)
