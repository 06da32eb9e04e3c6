"""LocalStaticSite: the deployment contract over the real static server, plus atomic swaps and pruning."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prefect.filesystems import LocalFileSystem

from blocks.targets import static_host as static_server
from blocks.targets.base import DeploymentTarget, SiteState
from blocks.targets.local_static import LocalStaticSite, site_name
from core.errors import ConfigError, Conflict
from core.settings import Settings, get_settings
from core.snapshots import SnapshotStore
from tests.contracts import samples
from tests.contracts.deployment_suite import Deployer, DeploymentTargetContract

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[static_server.ServerInfo]:
    """One real detached static server for the module, stopped at the end."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("static-data"))
    info = static_server.ensure_running(settings)
    try:
        yield info
    finally:
        assert static_server.stop(settings)


def _per_site(server: static_server.ServerInfo) -> str:
    """A base_url for the module's server: each site on its own origin, as without a base_url."""
    return f"http://{{site}}.localhost:{server.port}/"


class TestLocalStaticContract(DeploymentTargetContract):
    @pytest.fixture
    def target(self, server: static_server.ServerInfo) -> DeploymentTarget:
        return LocalStaticSite(root=server.root, base_url=_per_site(server))


@pytest.fixture
def target(server: static_server.ServerInfo) -> LocalStaticSite:
    return LocalStaticSite(root=server.root, base_url=_per_site(server))


@pytest.fixture
def snapshots(tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(LocalFileSystem(basepath=str(tmp_path / "storage")), "t1")


@pytest.fixture
def deployer(target: LocalStaticSite, snapshots: SnapshotStore) -> Deployer:
    return Deployer(target, snapshots, "Local Site")


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _version(n: int) -> list:
    return samples.changed(samples.small_site(), {"index.html": f"<h1>version {n}</h1>\n", "app.js": f"v{n}\n"})


def test_block_identity() -> None:
    assert LocalStaticSite.get_block_type_slug() == "pombolt-local-static-site"
    assert LocalStaticSite.get_block_type_name() == "Pom-Bolt Local Static Site"


def test_layout_symlink_release_and_hidden_releases(
    deployer: Deployer, target: LocalStaticSite, http: httpx.Client, server: static_server.ServerInfo
) -> None:
    result = deployer.deploy(samples.small_site())
    root = Path(server.root)
    site_id = site_name("Local Site", deployer.project_id)
    assert result.state.site_id == site_id
    assert (
        result.live_url == static_server.site_url(server.port, site_id) == f"http://{site_id}.localhost:{server.port}/"
    )
    assert result.deploy_id == deployer.snapshot_ids[-1]
    link = root / site_id
    assert link.is_symlink()
    assert os.readlink(link) == f".releases/{site_id}/{deployer.snapshot_ids[-1][:16]}"
    assert (root / ".releases" / site_id / f"{deployer.snapshot_ids[-1][:16]}.manifest.json").is_file()
    assert http.get(result.live_url).content == samples.INDEX_HTML.encode()
    assert http.get(f"{server.url}/{site_id}/").status_code == 404  # the bare host serves no site
    assert http.get(f"{server.url}/.releases/{site_id}/history.json").status_code == 404
    folder = http.get(result.live_url + "img")
    assert (folder.status_code, folder.headers["location"]) == (301, "/img/")  # to the trailing-slash URL


def test_served_headers(deployer: Deployer, http: httpx.Client) -> None:
    result = deployer.deploy(samples.small_site())
    expected = {
        "": "text/html",
        "app.js": "text/javascript",
        "styles.css": "text/css",
        "img/logo.png": "image/png",
        "fonts/x.woff2": "font/woff2",
    }
    for path, content_type in expected.items():
        response = http.get(result.live_url + path)
        assert response.headers["content-type"].startswith(content_type), path
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-content-type-options"] == "nosniff"


def test_unchanged_files_are_hard_linked(deployer: Deployer, server: static_server.ServerInfo) -> None:
    deployer.deploy(samples.small_site())
    first = deployer.snapshot_ids[-1][:16]
    result = deployer.deploy(samples.changed(samples.small_site(), {"app.js": "changed\n"}))
    releases = Path(server.root) / ".releases" / str(result.state.site_id)
    second = deployer.snapshot_ids[-1][:16]
    same = (releases / first / "img/logo.png").stat(), (releases / second / "img/logo.png").stat()
    assert same[0].st_ino == same[1].st_ino
    assert (releases / first / "app.js").stat().st_ino != (releases / second / "app.js").stat().st_ino


class ProbingStore(SnapshotStore):
    """A SnapshotStore that, whenever a deploy reads a blob, records what the live site serves."""

    def __init__(self, inner: SnapshotStore, live_url: str, client: httpx.Client) -> None:
        super().__init__(inner.fs, inner.tenant_id)
        self.live_url, self.client, self.seen = live_url, client, []

    def read_blob(self, sha: str, *, path: str = "") -> bytes:
        self.seen.append(_sha(self.client.get(self.live_url).content))
        return super().read_blob(sha, path=path)


def test_old_release_is_served_until_the_switch(
    deployer: Deployer, target: LocalStaticSite, snapshots: SnapshotStore, http: httpx.Client
) -> None:
    first = deployer.deploy(_version(1))
    old_sha = deployer.sha256_of("index.html")
    probe = ProbingStore(snapshots, first.live_url, http)
    request = deployer.request(_version(2))
    result = target.deploy(probe, request, deployer.state)
    assert result.files_uploaded == 2
    assert probe.seen == [old_sha, old_sha]  # while the new release was written, the old one was live
    assert _sha(http.get(result.live_url).content) == deployer.sha256_of("index.html") != old_sha


def test_readers_never_see_a_missing_or_mixed_site(deployer: Deployer, http: httpx.Client) -> None:
    first = deployer.deploy(_version(1))
    shas = {_sha(f"<h1>version {n}</h1>\n".encode()) for n in (1, 2)}
    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def read() -> None:
        with httpx.Client(timeout=5.0) as client:
            while not stop.is_set():
                response = client.get(first.live_url)
                seen.append((response.status_code, _sha(response.content)))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        deadline, n = time.monotonic() + 10.0, 0
        while (n < 12 or len(seen) < 40) and time.monotonic() < deadline:
            deployer.deploy(_version(1 + n % 2))
            n += 1
    finally:
        stop.set()
        reader.join(timeout=10)
    assert len(seen) >= 40 and all(status == 200 and sha in shas for status, sha in seen)


def test_old_releases_are_pruned_and_kept_ones_redeploy_without_upload(
    deployer: Deployer, server: static_server.ServerInfo, http: httpx.Client
) -> None:
    results = [deployer.deploy(_version(n)) for n in range(1, 6)]
    ids = [sid[:16] for sid in deployer.snapshot_ids]
    releases = Path(server.root) / ".releases" / str(results[-1].state.site_id)
    kept = sorted(p.name for p in releases.iterdir() if p.is_dir())
    assert kept == sorted(ids[-3:])
    assert sorted(p.name for p in releases.glob("*.manifest.json")) == sorted(f"{i}.manifest.json" for i in ids[-3:])
    back = deployer.deploy(_version(3))  # still kept: a switch, nothing written
    assert (back.files_uploaded, back.files_deleted) == (0, 0)
    assert http.get(back.live_url).content == b"<h1>version 3</h1>\n"
    old = deployer.deploy(_version(1))  # pruned: rebuilt, only the differing files written
    assert old.files_uploaded == 2
    assert http.get(old.live_url).content == b"<h1>version 1</h1>\n"


def test_delete_removes_the_site(deployer: Deployer, target: LocalStaticSite, http: httpx.Client) -> None:
    result = deployer.deploy(samples.small_site())
    target.remove(result.state)
    root = target.root_path()
    assert not (root / str(result.state.site_id)).exists()
    assert not (root / ".releases" / str(result.state.site_id)).exists()
    assert http.get(result.live_url).status_code == 404
    target.remove(result.state)
    target.remove(SiteState())


def test_a_foreign_folder_at_the_site_path_is_not_overwritten(deployer: Deployer, target: LocalStaticSite) -> None:
    foreign = target.root_path() / site_name("Local Site", deployer.project_id)
    foreign.mkdir()
    with pytest.raises(Conflict, match="not a site symlink"):
        deployer.deploy(samples.small_site())
    with pytest.raises(Conflict):
        target.remove(SiteState(site_id=foreign.name))
    assert foreign.is_dir()


def test_preflight_refuses_an_unwritable_root(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="not writable"):
        LocalStaticSite(root=str(blocker / "sites"), base_url="http://127.0.0.1:1").preflight()


@pytest.fixture
def data_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Settings]:
    """POMBOLT_DATA_DIR in tmp_path for code that reads the global settings; stops any server started."""
    monkeypatch.setenv("POMBOLT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("POMBOLT_STATIC_PORT", raising=False)
    get_settings.cache_clear()
    try:
        yield get_settings()
    finally:
        static_server.stop(get_settings())
        get_settings.cache_clear()


def test_without_base_url_the_static_server_is_started_and_reused(
    data_dir_env: Settings, snapshots: SnapshotStore, http: httpx.Client
) -> None:
    target = LocalStaticSite()
    target.preflight()
    first = Deployer(target, snapshots, "Served Here").deploy(samples.small_site())
    info = static_server.status(data_dir_env)
    assert info is not None and first.live_url == static_server.site_url(info.port, str(first.state.site_id))
    assert info.root == str(data_dir_env.data_dir / "sites")
    second = Deployer(target, snapshots, "Another").deploy(samples.small_site())
    assert static_server.status(data_dir_env) == info  # the same server, reused
    for result in (first, second):
        assert http.get(result.live_url).content == samples.INDEX_HTML.encode()


def test_a_base_url_without_site_serves_sites_under_one_path(snapshots: SnapshotStore, tmp_path: Path) -> None:
    target = LocalStaticSite(root=str(tmp_path / "sites"), base_url="http://sites.example.test/all/")
    result = Deployer(target, snapshots, "Pathed").deploy(samples.small_site())
    assert result.live_url == f"http://sites.example.test/all/{result.state.site_id}/"


def test_a_custom_root_without_base_url_is_refused(data_dir_env: Settings, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="base_url"):
        LocalStaticSite(root=str(tmp_path / "elsewhere")).preflight()


# --- the static server's lifecycle ------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_server_lifecycle_on_a_configured_port(tmp_path: Path, http: httpx.Client) -> None:
    port = _free_port()
    settings = Settings(data_dir=tmp_path / "data", static_port=port)
    try:
        info = static_server.ensure_running(settings)
        assert (info.host, info.port, info.url) == ("127.0.0.1", port, f"http://127.0.0.1:{port}")
        assert static_server.ensure_running(settings).pid == info.pid
        assert static_server.status(settings) == info
        health = http.get(f"{info.url}{static_server.HEALTH_PATH}").json()
        assert health == {"service": "pombolt-static", "pid": info.pid, "root": info.root}
        assert (settings.data_dir / "static-server.json").is_file()
    finally:
        assert static_server.stop(settings)
    assert static_server.status(settings) is None
    assert not (settings.data_dir / "static-server.json").exists()
    assert not static_server.stop(settings)
    with pytest.raises(httpx.TransportError):
        http.get(f"http://127.0.0.1:{port}/")


def test_a_stale_pidfile_is_replaced(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    settings.ensure_data_dir()
    stale = static_server.ServerInfo(pid=2**22 + 7, host="127.0.0.1", port=1, url="http://127.0.0.1:1", root="x")
    (settings.data_dir / "static-server.json").write_text(stale.model_dump_json())
    try:
        info = static_server.ensure_running(settings)
        assert info.pid != stale.pid and static_server.status(settings) == info
    finally:
        assert static_server.stop(settings)


def test_a_taken_port_is_a_config_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = Settings(data_dir=tmp_path / "data", static_port=port)
        with pytest.raises(ConfigError, match=f"port {port}.*POMBOLT_STATIC_PORT"):
            static_server.ensure_running(settings)
    assert static_server.status(settings) is None
    assert not (settings.data_dir / "static-server.json").exists()


def test_a_non_loopback_host_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="loopback"):
        static_server.ensure_running(Settings(data_dir=tmp_path / "data", static_host="0.0.0.0"))
