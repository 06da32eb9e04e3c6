"""Fixtures for the phase tasks' unit tests: Prefect's test harness, a queued run, saved Blocks, a live site.

Phase tests call ``task.fn(...)``: the task's own code, without the engine (no caching, no retries). Saved
Blocks are saved to and loaded from the harness's real Prefect API; a site is served by a real HTTP server
on 127.0.0.1.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prefect.blocks.core import Block
from sqlalchemy import event

from core.models import Project, Run
from core.runtime import get_store

TENANT = "local"
_SELECT_FROM = re.compile(r"^\s*SELECT\b.*?\bFROM\s+(\w+)", re.IGNORECASE | re.DOTALL)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A real temporary Prefect server (started once: it costs 7-9 s), for tests that save or load Blocks."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture
def queue_run(data_dir: Path) -> Callable[..., Run]:
    """Make a project (Blocks ``offline``, ``local-git``, ``local-static`` unless named) and a queued run of it."""
    store = get_store()
    store.ensure_tenant(TENANT)

    def make(requirements: str = "a pomodoro timer", *, name: str = "app", **fields: Any) -> Run:
        refs = {k: fields.pop(k) for k in ("generator_ref", "repository_ref", "target_ref") if k in fields}
        project = store.find_project(TENANT, name) or store.create_project(
            Project(
                tenant_id=TENANT,
                name=name,
                generator_ref=refs.get("generator_ref", "offline"),
                repository_ref=refs.get("repository_ref", "local-git"),
                target_ref=refs.get("target_ref", "local-static"),
            )
        )
        run = store.create_run(project, requirements)
        return store.update(run, **fields) if fields else run

    return make


@pytest.fixture
def save(prefect_harness: None, data_dir: Path) -> Callable[[str, Block], str]:
    """Save a Block as the test tenant's ``name`` (through the harness's Prefect API)."""
    from blocks.catalog import save_block

    store = get_store()
    store.ensure_tenant(TENANT)
    return lambda name, block: save_block(store, TENANT, name, block)


@contextmanager
def selects() -> Iterator[Counter[str]]:
    """Count, per table, the SELECTs the state store sends inside the block (SQLAlchemy's own event)."""
    engine = get_store().engine
    seen: Counter[str] = Counter()

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        match = _SELECT_FROM.match(statement)
        if match:
            seen[match.group(1).lower()] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Scripted(_Quiet):
    bodies: list[bytes]
    status: int

    def do_GET(self) -> None:
        body = self.bodies.pop(0) if len(self.bodies) > 1 else self.bodies[0]
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def _serving(handler: Any) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def serve_bodies() -> Iterator[Callable[..., str]]:
    """A server answering every GET with the next of ``bodies`` (the last one for ever); returns its URL."""
    with ExitStack() as servers:

        def start(bodies: list[bytes], status: int = 200) -> str:
            handler = type("Handler", (_Scripted,), {"bodies": list(bodies), "status": status})
            return servers.enter_context(_serving(handler))

        yield start


@pytest.fixture
def sites(data_dir: Path) -> Iterator[tuple[Path, str]]:
    """A folder of sites and the URL of a static HTTP server serving it (what ``LocalStaticSite`` deploys to)."""
    root = data_dir / "served-sites"
    root.mkdir(parents=True)
    with _serving(partial(_Quiet, directory=str(root))) as url:
        yield root, url
