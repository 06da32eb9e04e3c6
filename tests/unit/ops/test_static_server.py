"""The static server process's handler and binding, run in a thread (no process spawned)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from blocks.targets.static_host import HEALTH_PATH
from core.errors import ConfigError
from ops.static_server import make_server


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
    (release / ".well-known").mkdir()
    (release / ".well-known" / "security.txt").write_text("hi")
    os.symlink(".releases/demo/r1", tmp_path / "sites" / "demo")
    (tmp_path / "sites" / "empty").mkdir()
    return tmp_path / "sites"


@pytest.fixture
def base_url(root: Path) -> Iterator[str]:
    server = make_server(root, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def test_health_names_the_service_pid_and_root(base_url: str, root: Path, http: httpx.Client) -> None:
    health = http.get(base_url + HEALTH_PATH).json()
    assert health == {"service": "pombolt-static", "pid": os.getpid(), "root": str(root.resolve())}


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("demo/", "text/html"),
        ("demo/app.js", "text/javascript"),
        ("demo/styles.css", "text/css"),
        ("demo/logo.svg", "image/svg+xml"),
        ("demo/logo.png", "image/png"),
        ("demo/fonts/x.woff2", "font/woff2"),
    ],
)
def test_symlinked_site_is_served_with_types_and_no_cache(
    base_url: str, http: httpx.Client, path: str, content_type: str
) -> None:
    response = http.get(f"{base_url}/{path}")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == content_type
    assert response.headers["cache-control"] == "no-cache"


def test_binary_bytes_are_exact(base_url: str, http: httpx.Client) -> None:
    assert http.get(f"{base_url}/demo/logo.png").content == b"\x89PNG\x00\xff"


@pytest.mark.parametrize("path", [".releases/", ".releases/demo/r1/index.html", "empty/", "missing.html", ""])
def test_hidden_folders_listings_and_missing_files_are_404(base_url: str, http: httpx.Client, path: str) -> None:
    assert http.get(f"{base_url}/{path}").status_code == 404
    assert http.head(f"{base_url}/{path}").status_code == 404


def test_dot_files_inside_a_site_are_served(base_url: str, http: httpx.Client) -> None:
    assert http.get(f"{base_url}/demo/.well-known/security.txt").text == "hi"


def test_make_server_refuses_non_loopback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="loopback"):
        make_server(tmp_path, "0.0.0.0", 0)
