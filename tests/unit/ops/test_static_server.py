"""The static server process's handler and binding, run in a thread (no process spawned).

Sites are addressed by host (``<site>.localhost``); the tests connect to 127.0.0.1 and send that ``Host``, so
they do not depend on the resolver. The attacks themselves are in ``tests/security/test_static_origin.py``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from blocks.targets.static_host import HEALTH_PATH
from core.errors import ConfigError
from ops.static_server import BARE, _Refused, make_server, normalise_path, site_of_host


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A sites root: one site as a symlink to a release, a hidden releases folder, a folder without index."""
    release = tmp_path / "sites" / ".releases" / "demo" / "r1"
    (release / "fonts").mkdir(parents=True)
    (release / "index.html").write_text("<h1>demo</h1>")
    (release / "app.js").write_text("1;")
    (release / "styles.css").write_text("h1{}")
    (release / "logo.svg").write_text("<svg/>")
    (release / "logo.png").write_bytes(b"\x89PNG\x00\xff")
    (release / "fonts" / "x.woff2").write_bytes(b"wOF2\x00\xff")
    (release / "docs").mkdir()
    (release / "docs" / "index.html").write_text("docs")
    (release / "noindex").mkdir()
    os.symlink(".releases/demo/r1", tmp_path / "sites" / "demo")
    (tmp_path / "sites" / "empty").mkdir()
    return tmp_path / "sites"


@pytest.fixture
def port(root: Path) -> Iterator[int]:
    server = make_server(root, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def get(http: httpx.Client, port: int, path: str, host: str = "demo.localhost", method: str = "GET") -> httpx.Response:
    """``method /path`` sent to 127.0.0.1:port with ``Host: <host>:<port>``."""
    return http.request(method, f"http://127.0.0.1:{port}/{path}", headers={"Host": f"{host}:{port}"})


def test_health_names_the_service_pid_and_root(port: int, root: Path, http: httpx.Client) -> None:
    health = http.get(f"http://127.0.0.1:{port}{HEALTH_PATH}").json()
    assert health == {"service": "pombolt-static", "pid": os.getpid(), "root": str(root.resolve())}


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("", "text/html"),
        ("app.js", "text/javascript"),
        ("styles.css", "text/css"),
        ("logo.svg", "image/svg+xml"),
        ("logo.png", "image/png"),
        ("fonts/x.woff2", "font/woff2"),
        ("docs/", "text/html"),
    ],
)
def test_a_site_is_served_on_its_host_with_types_no_cache_and_nosniff(
    port: int, http: httpx.Client, path: str, content_type: str
) -> None:
    response = get(http, port, path)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == content_type
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_binary_bytes_are_exact_and_head_has_no_body(port: int, http: httpx.Client) -> None:
    assert get(http, port, "logo.png").content == b"\x89PNG\x00\xff"
    head = get(http, port, "logo.png", method="HEAD")
    assert (head.status_code, head.headers["content-length"], head.content) == (200, "6", b"")


def test_a_folder_without_slash_redirects_on_the_same_origin(port: int, http: httpx.Client) -> None:
    response = get(http, port, "docs?x=1")
    assert (response.status_code, response.headers["location"]) == (301, "/docs/?x=1")


@pytest.mark.parametrize(
    ("host", "path", "status"),
    [
        ("demo.localhost", "noindex/", 404),  # no listing
        ("demo.localhost", "missing.html", 404),
        ("demo.localhost", ".releases/demo/r1/index.html", 404),
        ("empty.localhost", "", 404),  # a folder that is not a release link
        ("nosuch.localhost", "", 404),
        ("127.0.0.1", "", 404),  # the bare host serves no site
        ("localhost", "demo/", 404),
        ("example.com", "", 421),
        ("demo.localhost.evil", "", 421),
    ],
)
def test_what_is_not_a_served_file_is_refused(port: int, http: httpx.Client, host: str, path: str, status: int) -> None:
    assert get(http, port, path, host).status_code == status
    assert get(http, port, path, host, method="HEAD").status_code == status
    assert get(http, port, path, host).headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("header", "site"),
    [
        (None, BARE),
        ("127.0.0.1:8080", BARE),
        ("localhost", BARE),
        ("[::1]:8080", BARE),
        ("demo.localhost:8080", "demo"),
        ("Demo.LocalHost", "demo"),
        ("my-app-3f2a9c01.localhost:1", "my-app-3f2a9c01"),
        ("a.b.localhost:8080", None),
        ("-x.localhost", None),
        ("x" * 64 + ".localhost", None),
        ("demo.localhost:80x", None),
        ("demo.localhost.:8080", None),
        ("demo.example.com", None),
        ("", None),
    ],
)
def test_site_of_host(header: str | None, site: str | None) -> None:
    assert site_of_host(header) == site


@pytest.mark.parametrize(
    ("target", "parts", "slash"),
    [
        ("/", [], True),
        ("/a/b.js?q=1#f", ["a", "b.js"], False),
        ("//a///b/./", ["a", "b"], True),
        ("/a/../b", ["b"], False),
        ("/a%2fb", ["a", "b"], False),
        ("/a\\b", ["a", "b"], False),
        ("/%2e/x", ["x"], False),
        ("/a/..", [], True),
    ],
)
def test_normalise_path(target: str, parts: list[str], slash: bool) -> None:
    assert normalise_path(target) == (parts, slash)


@pytest.mark.parametrize("target", ["/..", "/a/../..", "/%2e%2e/x", "/x%00", "/%ff", "http://demo.localhost/", "*"])
def test_normalise_path_refuses_escapes_and_garbage(target: str) -> None:
    with pytest.raises(_Refused, match="Bad Request"):
        normalise_path(target)


def test_make_server_refuses_non_loopback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="loopback"):
        make_server(tmp_path, "0.0.0.0", 0)
