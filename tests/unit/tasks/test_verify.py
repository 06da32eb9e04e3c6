"""Phase verify: the live URL is fetched until it serves the deployed index.html, bounded in time, through the
same fetch-and-compare the scheduled re-checks of live sites use (tasks.livecheck.probe_index)."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from core.errors import PhaseFailed, VerifyFailed
from core.models import Run
from core.runtime import reset_caches
from tasks.livecheck import probe_index
from tasks.verify import verify
from tests.unit.tasks.conftest import TENANT

OLD, NEW = b"<h1>old</h1>", b"<h1>new</h1>"
NEW_SHA = hashlib.sha256(NEW).hexdigest()


def test_the_live_url_is_polled_until_it_serves_the_deployed_page(
    queue_run: Callable[..., Run], serve_bodies: Callable[..., str]
) -> None:
    url = serve_bodies([OLD, OLD, NEW])
    result = verify.fn(queue_run().id, TENANT, url, NEW_SHA)
    assert (result.url, result.index_sha256, result.attempts) == (url, NEW_SHA, 3)


def test_a_site_that_never_serves_it_fails_naming_what_it_served(
    queue_run: Callable[..., Run], serve_bodies: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POMBOLT_TIMEOUT_TASK_VERIFY", "1")  # polls for the shortest time verify allows (5 s)
    reset_caches()
    url = serve_bodies([OLD])
    with pytest.raises(VerifyFailed) as info:
        verify.fn(queue_run().id, TENANT, url, NEW_SHA)
    old = hashlib.sha256(OLD).hexdigest()
    assert f"HTTP 200, index sha256 {old[:12]} (want {NEW_SHA[:12]})" in info.value.message


def test_a_site_without_an_entry_page_cannot_be_verified(queue_run: Callable[..., Run]) -> None:
    with pytest.raises(PhaseFailed, match=r"no index\.html to verify"):
        verify.fn(queue_run().id, TENANT, "http://127.0.0.1:9/", None)


def test_a_probe_reports_what_was_served_and_never_raises(
    data_dir: Path, serve_bodies: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert probe_index(serve_bodies([NEW]), NEW_SHA).ok
    missing = probe_index(serve_bodies([b"not found"], status=404), NEW_SHA)
    assert (missing.ok, missing.status_code, missing.describe()[:8]) == (False, 404, "HTTP 404")
    monkeypatch.setenv("POMBOLT_TIMEOUT_HTTP_ATTEMPTS", "1")
    reset_caches()
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = probe_index(f"http://127.0.0.1:{port}/", NEW_SHA)
    assert not down.ok and down.status_code is None and down.error
