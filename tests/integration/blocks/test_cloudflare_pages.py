"""CloudflarePagesSite against a stateful fake Cloudflare, with Prism and Cloudflare's contracts in front.

One Prism proxies every API call. Its contract is ``cloudflare.openapi.json`` merged with
``cloudflare-pages-direct-upload.UNOFFICIAL.openapi.json`` (paths and components; a name both define must be
identical), so the direct-upload calls are checked too. A test fails when Prism logs anything: an invalid
request or response, or an undeclared status. Live sites are fetched from the fake directly.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.filesystems import LocalFileSystem
from pydantic import SecretStr

from blocks.targets._hashing import cloudflare_asset_key
from blocks.targets.base import DeploymentTarget
from blocks.targets.cloudflare_pages import CloudflarePagesSite
from core.errors import AuthFailed, ConfigError, DeployFailed
from core.files import GeneratedFile
from core.snapshots import SnapshotStore
from tests.conftest import require_prism
from tests.contracts import samples
from tests.contracts.deployment_suite import Deployer, DeploymentTargetContract
from tests.fakes.base import Response
from tests.fakes.cloudflare import FakeCloudflare
from tests.fakes.prism import PrismLog, PrismProxy, contracts_dir

pytestmark = pytest.mark.integration

TOKEN = "cf_api_token_fake_0123456789abcdefXYZ"
ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"


def merged_contract(dest: Path) -> Path:
    """Write cloudflare.openapi.json plus the UNOFFICIAL direct-upload paths into one file."""
    official = json.loads((contracts_dir() / "cloudflare.openapi.json").read_text())
    unofficial = json.loads((contracts_dir() / "cloudflare-pages-direct-upload.UNOFFICIAL.openapi.json").read_text())
    for path, ops in unofficial["paths"].items():
        assert path not in official["paths"], path
        official["paths"][path] = ops
    for section, items in unofficial.get("components", {}).items():
        target = official.setdefault("components", {}).setdefault(section, {})
        for name, value in items.items():
            assert target.get(name, value) == value, f"components.{section}.{name} differs between the contracts"
            target[name] = value
    dest.write_text(json.dumps(official))
    return dest


class Stack:
    """The fake, Prism in front of it, and how far Prism's log has been checked."""

    def __init__(self, fake: FakeCloudflare, prism: PrismProxy) -> None:
        self.fake, self.prism = fake, prism
        self.log = PrismLog(prism)

    def problems(self) -> list[str]:
        return self.log.new_problems()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prism_bin = require_prism()
    folder = tmp_path_factory.mktemp("prism")
    contract = merged_contract(folder / "cloudflare-with-direct-upload.openapi.json")
    with FakeCloudflare(tokens={TOKEN}) as fake, PrismProxy(contract, fake.api_url, prism_bin, log_dir=folder) as proxy:
        yield Stack(fake, proxy)


@pytest.fixture(autouse=True)
def contract_clean(stack: Stack) -> Iterator[None]:
    """Reset the fake's knobs; fail the test on anything Prism reported during it."""
    stack.problems()
    stack.fake.clear_scripts()
    stack.fake.polls_before_ready, stack.fake.fail_next, stack.fake.jwt_uses = 1, False, None
    yield
    problems = stack.problems()
    assert not problems, "Prism reported contract problems:\n" + "\n".join(problems)


def _site(stack: Stack, project: str | None = None, **options: Any) -> CloudflarePagesSite:
    name = project or f"pb-{uuid.uuid4().hex[:12]}"
    fields: dict[str, Any] = {
        "api_token": SecretStr(TOKEN),
        "account_id": ACCOUNT,
        "project_name": name,
        "api_url": stack.prism.url,
        "site_url": stack.fake.site_url(name),
    }
    fields.update(options)
    return CloudflarePagesSite(**fields)


class TestCloudflarePagesContract(DeploymentTargetContract):
    @pytest.fixture
    def target(self, stack: Stack) -> DeploymentTarget:
        return _site(stack)


@pytest.fixture
def snapshots(tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(LocalFileSystem(basepath=str(tmp_path / "storage")), "t1")


@pytest.fixture
def site(stack: Stack) -> CloudflarePagesSite:
    return _site(stack)


@pytest.fixture
def deployer(site: CloudflarePagesSite, snapshots: SnapshotStore) -> Deployer:
    return Deployer(site, snapshots, "Cloudflare App")


def test_block_identity() -> None:
    assert CloudflarePagesSite.get_block_type_slug() == "pombolt-cloudflare-pages"
    block = CloudflarePagesSite(api_token=SecretStr("x"), account_id=ACCOUNT, project_name="p")
    assert block.api_url == "https://api.cloudflare.com/client/v4"


def test_direct_upload_flow_keys_manifest_and_uploads_only_missing(stack: Stack, deployer: Deployer) -> None:
    files = [
        GeneratedFile.text("index.html", "<h1>hi</h1>\n"),
        GeneratedFile.text("a/same.txt", "same\n"),
        GeneratedFile.text("b/same.txt", "same\n"),
    ]
    result = deployer.deploy(files)
    project = deployer.target.project_name  # type: ignore[attr-defined]
    created = stack.fake.last("POST", rf"/client/v4/accounts/{ACCOUNT}/pages/projects/{project}/deployments")
    manifest = json.loads(created.body.split(b'name="manifest"\r\n\r\n')[1].split(b"\r\n--")[0])
    assert manifest["/index.html"] == "17453d0cfb9bacc76d9f30d3cb9ca048"  # FLOWS.md test vector
    assert set(manifest) == {"/index.html", "/a/same.txt", "/b/same.txt"}
    assert created.headers["Authorization"] == f"Bearer {TOKEN}"  # the API token, not the JWT
    uploads = [item for r in stack.fake.requests("POST", r"/client/v4/pages/assets/upload") for item in r.json()]
    same = cloudflare_asset_key("a/same.txt", b"same\n")
    assert same in {u["key"] for u in uploads} and result.files_uploaded == 2  # identical files go up once
    upload_auth = stack.fake.last("POST", r"/client/v4/pages/assets/upload").headers["Authorization"]
    assert upload_auth.removeprefix("Bearer ") in stack.fake.jwts  # assets use the JWT
    assert {base64.b64decode(u["value"]) for u in uploads if u["key"] in manifest.values()} >= {b"same\n"}
    upsert = stack.fake.last("POST", r"/client/v4/pages/assets/upsert-hashes").json()
    assert set(upsert["hashes"]) == set(manifest.values())
    assert result.bytes_uploaded == 12 + 5


def test_project_is_created_once_and_reused_without_state(
    stack: Stack, deployer: Deployer, snapshots: SnapshotStore
) -> None:
    first = deployer.deploy(samples.small_site())
    assert first.created and first.state.created_by_run
    lost = Deployer(deployer.target, snapshots, deployer.project_name)
    again = lost.deploy(samples.small_site())
    assert not again.created and again.state.created_by_run is None
    assert again.files_uploaded == 0
    creates = stack.fake.requests("POST", rf"/client/v4/accounts/{ACCOUNT}/pages/projects")
    assert [r.json()["name"] for r in creates].count(first.state.site_id) == 1
    assert again.state.site_id == first.state.site_id


def test_expired_upload_jwt_is_replaced(stack: Stack, deployer: Deployer) -> None:
    stack.fake.jwt_uses = 1  # every JWT expires after one asset call
    stack.fake.clear_log()
    result = deployer.deploy(samples.changed(samples.small_site(), {"new.txt": uuid.uuid4().hex}))
    assert result.files_uploaded == 1
    assert stack.fake.count("GET", r".*/upload-token") == 3  # check-missing, upload, upsert: one JWT each
    assert [r.status for r in stack.fake.requests("POST", r"/client/v4/pages/assets/upload")] == [401, 200]


def test_deployment_is_polled_until_its_deploy_stage_succeeds(stack: Stack, deployer: Deployer) -> None:
    stack.fake.polls_before_ready = 3
    stack.fake.clear_log()
    result = deployer.deploy(samples.small_site())
    assert stack.fake.count("GET", rf".*/deployments/{result.deploy_id}") == 4


def test_redirects_go_as_a_deployment_part_and_the_default_url_is_the_project_subdomain(
    stack: Stack, snapshots: SnapshotStore
) -> None:
    site = _site(stack, site_url=None)
    redirects = b"/old /index.html 301\n"
    files = [*samples.small_site(), GeneratedFile(path="_redirects", content=redirects)]
    result = Deployer(site, snapshots, "Redirects").deploy(files)
    assert result.live_url == f"https://{site.project_name}.pages.dev/"
    created = stack.fake.last("POST", rf".*/projects/{site.project_name}/deployments")
    assert b'name="_redirects"; filename="_redirects"' in created.body and redirects in created.body
    manifest = json.loads(created.body.split(b'name="manifest"\r\n\r\n')[1].split(b"\r\n--")[0])
    assert "/_redirects" not in manifest and "/index.html" in manifest


def test_failed_deployment_raises_deploy_failed(stack: Stack, deployer: Deployer) -> None:
    stack.fake.fail_next = True
    with pytest.raises(DeployFailed, match="failed in stage 'deploy'"):
        deployer.deploy(samples.small_site())


def test_remove_deletes_only_a_project_a_run_created(
    stack: Stack, deployer: Deployer, snapshots: SnapshotStore
) -> None:
    first = deployer.deploy(samples.small_site())
    reused = Deployer(deployer.target, snapshots, "x").deploy(samples.small_site())
    deployer.target.remove(reused.state)  # not created by that run: kept
    assert first.state.site_id in stack.fake.projects
    deployer.target.remove(first.state)
    assert first.state.site_id not in stack.fake.projects


def test_429_with_retry_after_is_honoured(stack: Stack, deployer: Deployer) -> None:
    stack.fake.script(
        "POST",
        r"/client/v4/pages/assets/check-missing",
        Response(429, stack.fake.error_body(429, "slow down"), {"Retry-After": "1"}),
    )
    stack.fake.clear_log()
    result = deployer.deploy(samples.small_site())
    first, second = stack.fake.requests("POST", r"/client/v4/pages/assets/check-missing")
    assert first.status == 429 and second.status == 200
    assert second.timestamp - first.timestamp >= 0.9  # waited as asked
    assert result.deploy_id


def test_bad_token_fails_preflight_and_is_never_logged(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    secret = "cf_wrong_token_value_987654321"
    caplog.set_level(logging.DEBUG)
    # Straight to the fake: every 4XX body in cloudflare.openapi.json is allOf[success: true, success: false],
    # which no answer can satisfy, so Prism would turn the fake's correct 401 into a 500.
    site = _site(stack, api_token=SecretStr(secret), api_url=stack.fake.api_url)
    with pytest.raises(AuthFailed) as info:
        site.preflight()
    assert secret not in str(info.value) and secret not in caplog.text
    assert secret not in repr(site) and secret not in site.model_dump_json()


def test_token_and_jwt_never_reach_logs_results_or_state(
    stack: Stack, deployer: Deployer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    unique = {"unique.txt": uuid.uuid4().hex}  # something the shared asset store lacks, so it is uploaded
    result = deployer.deploy(samples.changed(samples.small_site(), unique))
    dumped = result.model_dump_json()
    for secret in [TOKEN, *stack.fake.jwts]:
        assert secret not in caplog.text and secret not in dumped
    assert any("pages/assets/upload" in r.getMessage() for r in caplog.records)  # the calls were logged


def test_invalid_project_name_is_a_config_error(stack: Stack) -> None:
    with pytest.raises(ConfigError, match="project name 'Bad_Name' is invalid"):
        _site(stack, project="Bad_Name").preflight()
