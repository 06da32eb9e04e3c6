"""Attacks on the local static server: hostile tenants reading each other's sites or the server's files.

Two tenants' sites, alpha and beta, are deployed by the real ``LocalStaticSite`` Block (no ``base_url``: it starts
the real detached server) under a throwaway ``POMBOLT_DATA_DIR``. Requests go over raw sockets, byte for byte
as written (no client normalises ``..``, ``%2e`` or ``//``); the browser check drives the system Chromium.
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.filesystems import LocalFileSystem

from blocks.targets import static_host
from blocks.targets.base import DeployResult
from blocks.targets.local_static import LocalStaticSite
from core.files import GeneratedFile
from core.localhost import is_localhost_name
from core.settings import get_settings
from core.snapshots import SnapshotStore
from tasks.livecheck import probe_index
from tests.conftest import IN_CI
from tests.contracts.deployment_suite import Deployer

ALPHA_SECRET = "alpha-only-7c1e"
BETA_MARK = "beta-page-52d0"
ALPHA_INDEX = f"""<!doctype html><title>alpha</title><h1>alpha</h1>
<script>
localStorage.setItem("secret", "{ALPHA_SECRET}");
document.cookie = "sid={ALPHA_SECRET}; path=/; SameSite=Lax";
document.cookie = "wide={ALPHA_SECRET}; domain=localhost; path=/; SameSite=Lax";
</script>
"""
BETA_INDEX = f"<!doctype html><title>beta</title><h1>{BETA_MARK}</h1>\n"


@dataclass(frozen=True)
class Sites:
    """The served root, the server's port and the two deployed sites."""

    root: Path
    port: int
    alpha: DeployResult
    beta: DeployResult

    def host(self, result: DeployResult) -> str:
        return f"{result.state.site_id}.localhost:{self.port}"

    @property
    def a(self) -> str:
        """Alpha's site id."""
        return str(self.alpha.state.site_id)

    @property
    def b(self) -> str:
        """Beta's site id."""
        return str(self.beta.state.site_id)


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    data = tmp_path_factory.mktemp("static-origin")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POMBOLT_DATA_DIR", str(data / "data"))
        patch.delenv("POMBOLT_STATIC_PORT", raising=False)
        get_settings.cache_clear()
        try:
            snapshots = SnapshotStore(LocalFileSystem(basepath=str(data / "storage")), "t1")
            alpha = Deployer(LocalStaticSite(), snapshots, "Alpha").deploy(
                [
                    GeneratedFile.text("index.html", ALPHA_INDEX),
                    GeneratedFile.text("secret.txt", ALPHA_SECRET),
                    GeneratedFile.text("assets/app.js", "console.log(1)"),
                ]
            )
            beta = Deployer(LocalStaticSite(), snapshots, "Beta").deploy([GeneratedFile.text("index.html", BETA_INDEX)])
            info = static_host.status(get_settings())
            assert info is not None
            yield Sites(Path(info.root), info.port, alpha, beta)
        finally:
            static_host.stop(get_settings())
            get_settings.cache_clear()


def raw(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as is over a socket to 127.0.0.1:port; return status, headers (lower-case), body."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict((k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:]))
    return int(lines[0].split()[1]), headers, body


def get(port: int, target: str, host: str | None) -> tuple[int, dict[str, str], bytes]:
    """``GET target`` exactly as written, with ``Host: host`` (none when None)."""
    host_line = f"Host: {host}\r\n" if host is not None else ""
    return raw(port, f"GET {target} HTTP/1.1\r\n{host_line}Connection: close\r\n\r\n".encode("latin-1"))


# --- paths that climb out of the site, or into what is not its current release ------------------------
TRAVERSALS = [
    ("/x/../.releases/{a}/history.json", 404),  # the finding: normalised into .releases, a dot folder
    ("/../.releases/{a}/history.json", 400),
    ("/%2e%2e/.releases/{a}/history.json", 400),
    ("/%2E%2E/%2Ereleases/{a}/history.json", 400),
    ("/..%2f.releases/{a}/history.json", 400),
    ("/..%2F{b}/index.html", 400),
    ("/..\\.releases\\{a}\\history.json", 400),
    ("/%5c..%5c.releases%5c{a}%5chistory.json", 400),
    ("//..//.releases//{a}//history.json", 400),
    ("/assets/../../{b}/index.html", 400),
    ("/assets/..%2f..%2f..%2f..%2f..%2fetc/passwd", 400),
    ("/.releases/{a}/history.json", 404),
    ("/%2ereleases/{a}/history.json", 404),
    ("/.%2e/{b}/index.html", 400),
    ("//{b}/index.html", 404),  # duplicate slash: still alpha's root, which has no such folder
    ("/secret.txt%00.html", 400),
    ("/%ff", 400),
    ("http://{b}.localhost/index.html", 400),  # absolute-form target: never another site
]


@pytest.mark.parametrize(("target", "status"), TRAVERSALS)
def test_unnormalised_paths_never_leave_the_current_release(sites: Sites, target: str, status: int) -> None:
    code, headers, body = get(sites.port, target.format(a=sites.a, b=sites.b), sites.host(sites.alpha))
    assert code == status, body[:200]
    assert headers["x-content-type-options"] == "nosniff" and headers["cache-control"] == "no-cache"
    history = (sites.root / ".releases" / sites.a / "history.json").read_bytes()
    for leaked in (history, BETA_MARK.encode(), b"root:"):
        assert leaked not in body


def test_dot_files_are_hidden_at_every_level(sites: Sites) -> None:
    release = (sites.root / sites.a).resolve()
    (release / "assets" / ".env").write_text(ALPHA_SECRET)  # not deployable (path rules); planted by hand
    (release / ".git").mkdir()
    (release / ".git" / "config").write_text(ALPHA_SECRET)
    try:
        for target in ("/assets/.env", "/.git/config", "/assets/%2eenv", "/.git/", "/x/../.git/config"):
            code, _, body = get(sites.port, target, sites.host(sites.alpha))
            assert code == 404 and ALPHA_SECRET.encode() not in body, target
    finally:
        (release / "assets" / ".env").unlink()
        (release / ".git" / "config").unlink()
        (release / ".git").rmdir()


def test_only_the_release_link_is_followed(sites: Sites) -> None:
    release = (sites.root / sites.a).resolve()
    beta_index = (sites.root / sites.b).resolve() / "index.html"
    (release / "peek.html").symlink_to(beta_index)  # a link inside a release: never followed
    (release / "up").symlink_to(sites.root)
    (sites.root / "rogue").symlink_to(Path(".releases") / sites.b / (sites.root / sites.b).resolve().name)
    (sites.root / "escape").symlink_to("/etc")
    try:
        for host, target in [
            (sites.host(sites.alpha), "/peek.html"),
            (sites.host(sites.alpha), f"/up/{sites.b}/index.html"),
            (f"rogue.localhost:{sites.port}", "/index.html"),  # a site link into another site's releases
            (f"escape.localhost:{sites.port}", "/passwd"),
        ]:
            code, _, body = get(sites.port, target, host)
            assert code == 404 and BETA_MARK.encode() not in body and b"root:" not in body, (host, target)
    finally:
        for link in (release / "peek.html", release / "up", sites.root / "rogue", sites.root / "escape"):
            link.unlink()


# --- hosts ------------------------------------------------------------------------------------------------
def test_each_site_is_its_own_origin(sites: Sites) -> None:
    assert sites.alpha.live_url == f"http://{sites.a}.localhost:{sites.port}/"
    assert sites.beta.live_url == f"http://{sites.b}.localhost:{sites.port}/"
    assert get(sites.port, "/secret.txt", sites.host(sites.alpha))[2] == ALPHA_SECRET.encode()


def test_another_sites_host_cannot_read_the_first_sites_files(sites: Sites) -> None:
    beta = sites.host(sites.beta)
    assert get(sites.port, "/secret.txt", beta)[0] == 404
    code, _, body = get(sites.port, "/", beta)
    assert code == 200 and BETA_MARK.encode() in body and ALPHA_SECRET.encode() not in body
    for target in (f"/{sites.a}/secret.txt", f"/../{sites.a}/secret.txt", f"/..%2f{sites.a}%2fsecret.txt"):
        code, _, body = get(sites.port, target, beta)
        assert code in (400, 404) and ALPHA_SECRET.encode() not in body, target


@pytest.mark.parametrize("bare", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST", None])
def test_the_bare_host_serves_no_site(sites: Sites, bare: str | None) -> None:
    host = bare.format(port=sites.port) if bare else None
    for target in ("/", f"/{sites.a}/", f"/{sites.a}/secret.txt", f"/.releases/{sites.a}/history.json"):
        code, _, body = get(sites.port, target, host)
        assert code == 404 and ALPHA_SECRET.encode() not in body, (host, target)
    code, _, body = get(sites.port, static_host.HEALTH_PATH, host)
    assert code == 200 and json.loads(body)["service"] == "pombolt-static"


@pytest.mark.parametrize(
    "host",
    [
        "attacker.example:{port}",  # DNS rebinding: a foreign name pointed at 127.0.0.1
        "{a}.localhost.attacker.example",
        "x.{a}.localhost:{port}",
        "{a}.localhost:{port}@attacker.example",
        "{a}.localhost:{port}/x",
        "",
    ],
)
def test_foreign_or_malformed_hosts_get_nothing(sites: Sites, host: str) -> None:
    for target in ("/", "/secret.txt", static_host.HEALTH_PATH):
        code, _, body = get(sites.port, target, host.format(a=sites.a, port=sites.port))
        assert code == 421 and ALPHA_SECRET.encode() not in body and b"pid" not in body, (host, target)


def test_two_host_headers_are_refused(sites: Sites) -> None:
    request = f"GET /secret.txt HTTP/1.1\r\nHost: {sites.host(sites.beta)}\r\nHost: {sites.host(sites.alpha)}\r\n"
    code, _, body = raw(sites.port, (request + "Connection: close\r\n\r\n").encode())
    assert code == 400 and ALPHA_SECRET.encode() not in body


# --- Pom-Bolt's own client reaches <site>.localhost whatever the resolver says ------------------------------
@pytest.mark.parametrize(
    ("host", "mapped"),
    [("a.localhost", True), ("A.b.LOCALHOST.", True), ("localhost.attacker.example", False), ("evillocalhost", False)],
)
def test_only_localhost_subdomains_are_sent_to_loopback(host: str, mapped: bool) -> None:
    assert is_localhost_name(host) is mapped


def test_the_live_check_reaches_a_site_without_a_resolver_for_localhost(
    sites: Sites, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = socket.getaddrinfo

    def no_localhost_subdomains(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".localhost"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return system(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", no_localhost_subdomains)
    with pytest.raises(httpx.ConnectError):
        httpx.get(sites.alpha.live_url, timeout=5)  # a plain client depends on the resolver
    expected = hashlib.sha256(ALPHA_INDEX.encode()).hexdigest()
    probe = probe_index(sites.alpha.live_url, expected)  # core.http connects *.localhost to loopback itself
    assert probe.ok, probe.describe()
    wrong = probe_index(sites.beta.live_url, expected)  # and the Host header stays the site's
    assert wrong.status_code == 200 and not wrong.ok


# --- a real browser: two sites, two origins ---------------------------------------------------------------
@pytest.fixture
def page() -> Iterator[Any]:
    from tests.e2e.test_api_page import ARGS, chromium

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if IN_CI:
            pytest.fail("TOOL NOT AVAILABLE: the playwright package (pip install -e '.[test]')")
        pytest.skip("TOOL NOT AVAILABLE: the playwright package")
    executable = chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=ARGS)
        try:
            yield browser.new_context().new_page()
        finally:
            browser.close()


def test_a_site_cannot_read_another_sites_storage_cookies_or_files_in_a_browser(sites: Sites, page: Any) -> None:
    page.goto(sites.alpha.live_url)
    assert page.evaluate("localStorage.getItem('secret')") == ALPHA_SECRET
    assert f"sid={ALPHA_SECRET}" in page.evaluate("document.cookie")

    page.goto(sites.beta.live_url)
    assert page.locator("h1").inner_text() == BETA_MARK
    assert page.evaluate("location.origin") == sites.beta.live_url.rstrip("/")
    assert page.evaluate("localStorage.getItem('secret')") is None
    assert page.evaluate("document.cookie") == ""  # neither alpha's host cookie nor a domain=localhost one
    stolen = page.evaluate(
        """async (url) => {
             try { return await (await fetch(url)).text(); } catch (e) { return 'blocked: ' + e.name; }
           }""",
        sites.alpha.live_url + "secret.txt",
    )
    assert stolen.startswith("blocked"), stolen  # cross-origin, no CORS: the response is not readable

    page.goto(sites.alpha.live_url)  # alpha's data is still there: isolation, not loss
    assert page.evaluate("localStorage.getItem('secret')") == ALPHA_SECRET
