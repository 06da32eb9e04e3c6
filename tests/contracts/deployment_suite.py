"""The contract every DeploymentTarget passes (fsspec's abstract-test pattern).

The suite is a plain class (no ``Test`` prefix, so pytest does not collect it by itself). A provider runs
it by subclassing it in its own test module and providing a ``target`` fixture whose live URLs the
``http`` client can reach::

    from tests.contracts.deployment_suite import DeploymentTargetContract

    class TestNetlifySite(DeploymentTargetContract):
        @pytest.fixture
        def target(self, fake_netlify) -> DeploymentTarget:
            return NetlifySite(api_url=fake_netlify.api_url, token=SecretStr("t0k"))

        # Optional, when live URLs need routing (a fake CDN on 127.0.0.1, a Host header, ...):
        @pytest.fixture
        def http(self, fake_netlify) -> Iterator[httpx.Client]:
            with httpx.Client(transport=fake_netlify.site_transport(), timeout=10) as client:
                yield client

Fixtures the suite itself provides (override any of them): ``snapshots`` (a SnapshotStore on an unsaved
Prefect ``LocalFileSystem`` in ``tmp_path``, tenant ``t1``), ``project_name``, ``http`` (an
``httpx.Client`` following redirects), ``deployer`` (deploys file lists for one fresh project, threading the
SiteState from run to run) and ``fetch`` (GETs a path of a deploy result: ``""`` means its live URL).

What the contract demands: a deploy returns once the site is live; ``files_uploaded``/``bytes_uploaded``
count only what the target lacked (0 for an unchanged redeploy, 1 for one changed file);
``files_deleted`` counts the files the previous deploy had and this one does not; removed files answer
404; every byte is served exactly; ``remove`` takes the site down (its index answers 403, 404 or 410) and a
second ``remove`` is harmless. Every test uses a fresh project id, so one fake server can serve all.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from prefect.filesystems import LocalFileSystem

from blocks.targets.base import DeploymentTarget, DeployRequest, DeployResult, SiteState
from core.files import GeneratedFile
from core.snapshots import SnapshotStore
from tests.contracts import samples

TENANT = "t1"

Fetch = Callable[[DeployResult, str], httpx.Response]


class Deployer:
    """Deploys file lists for one project, the way the pipeline does (state in, state out)."""

    def __init__(self, target: DeploymentTarget, snapshots: SnapshotStore, project_name: str) -> None:
        self.target = target
        self.snapshots = snapshots
        self.project_name = project_name
        self.project_id = uuid.uuid4().hex
        self.state = SiteState()
        self.snapshot_ids: list[str] = []

    def request(self, files: Sequence[GeneratedFile]) -> DeployRequest:
        """Store ``files`` as a snapshot and build the deploy request for it."""
        snapshot_id = samples.store(self.snapshots, files)
        self.snapshot_ids.append(snapshot_id)
        return DeployRequest(
            tenant_id=self.snapshots.tenant_id,
            project_id=self.project_id,
            project_name=self.project_name,
            run_id=uuid.uuid4().hex,
            site_snapshot_id=snapshot_id,
        )

    def deploy(self, files: Sequence[GeneratedFile]) -> DeployResult:
        """Store ``files`` as a snapshot and deploy it; remember the new state."""
        result = self.target.deploy(self.snapshots, self.request(files), self.state)
        self.state = result.state
        return result

    def sha256_of(self, path: str) -> str:
        """The SHA-256 the latest snapshot records for ``path``."""
        return self.snapshots.manifest(self.snapshot_ids[-1]).by_path()[path].sha256


class DeploymentTargetContract:
    """Tests every DeploymentTarget passes; subclass it and provide a ``target`` fixture."""

    # --- fixtures a provider may override ---------------------------------------------------------------
    @pytest.fixture
    def target(self) -> DeploymentTarget:
        """The Block under test: every provider overrides this."""
        pytest.fail("a DeploymentTargetContract subclass must provide a 'target' fixture")

    @pytest.fixture
    def snapshots(self, tmp_path: Path) -> SnapshotStore:
        """Snapshot storage on an unsaved LocalFileSystem block."""
        return SnapshotStore(LocalFileSystem(basepath=str(tmp_path / "storage")), TENANT)

    @pytest.fixture
    def project_name(self) -> str:
        """Human name of the test project."""
        return "Contract Test Site"

    @pytest.fixture
    def http(self) -> Iterator[httpx.Client]:
        """The client that reads live sites."""
        with httpx.Client(timeout=10.0, follow_redirects=True) as client:
            yield client

    @pytest.fixture
    def deployer(self, target: DeploymentTarget, snapshots: SnapshotStore, project_name: str) -> Deployer:
        """A deployer for one fresh project."""
        return Deployer(target, snapshots, project_name)

    @pytest.fixture
    def fetch(self, http: httpx.Client) -> Fetch:
        """GET ``path`` of a deploy ("" = its live URL)."""

        def get(result: DeployResult, path: str = "") -> httpx.Response:
            return http.get(urljoin(result.live_url, path) if path else result.live_url)

        return get

    # --- the contract ---------------------------------------------------------------------------------
    def test_preflight_passes(self, target: DeploymentTarget) -> None:
        target.preflight()

    def test_first_deploy_serves_the_snapshot(self, deployer: Deployer, fetch: Fetch) -> None:
        files = samples.small_site()
        result = deployer.deploy(files)
        assert result.created and result.deploy_id
        assert result.state.site_id
        index = fetch(result, "")
        assert index.status_code == 200
        assert hashlib.sha256(index.content).hexdigest() == deployer.sha256_of("index.html")
        for f in files:
            assert fetch(result, f.path).content == f.content, f.path

    def test_unchanged_redeploy_uploads_nothing(self, deployer: Deployer, fetch: Fetch) -> None:
        first = deployer.deploy(samples.small_site())
        again = deployer.deploy(samples.small_site())
        assert (again.files_uploaded, again.bytes_uploaded, again.files_deleted) == (0, 0, 0)
        assert not again.created
        assert again.state.site_id == first.state.site_id
        assert again.live_url == first.live_url
        assert hashlib.sha256(fetch(again, "").content).hexdigest() == deployer.sha256_of("index.html")

    def test_one_changed_file_uploads_one(self, deployer: Deployer, fetch: Fetch) -> None:
        deployer.deploy(samples.small_site())
        new_js = b"console.log('changed');\n"
        result = deployer.deploy(samples.changed(samples.small_site(), {"app.js": new_js}))
        assert (result.files_uploaded, result.bytes_uploaded) == (1, len(new_js))
        assert fetch(result, "app.js").content == new_js
        assert fetch(result, "styles.css").content == samples.STYLES_CSS.encode()

    def test_deleted_file_is_gone_from_the_site(self, deployer: Deployer, fetch: Fetch) -> None:
        deployer.deploy(samples.small_site())
        result = deployer.deploy(samples.changed(samples.small_site(), {"styles.css": None}))
        assert result.files_deleted == 1
        assert result.files_uploaded == 0
        assert fetch(result, "styles.css").status_code == 404
        assert fetch(result, "app.js").status_code == 200
        assert hashlib.sha256(fetch(result, "").content).hexdigest() == deployer.sha256_of("index.html")

    def test_binary_files_are_byte_exact(self, deployer: Deployer, fetch: Fetch) -> None:
        result = deployer.deploy(samples.small_site())
        logo = fetch(result, "img/logo.png")
        font = fetch(result, "fonts/x.woff2")
        assert (logo.status_code, font.status_code) == (200, 200)
        assert logo.content == samples.png_bytes()
        assert font.content == samples.woff2_bytes()

    def test_remove_takes_the_site_down_and_a_second_remove_is_harmless(
        self, target: DeploymentTarget, deployer: Deployer, fetch: Fetch
    ) -> None:
        result = deployer.deploy(samples.small_site())
        assert result.state.created_by_run  # a fresh project: this run created the site
        assert fetch(result, "").status_code == 200
        target.remove(deployer.state)
        assert fetch(result, "").status_code in (403, 404, 410)
        target.remove(deployer.state)
