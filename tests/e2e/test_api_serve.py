"""``pombolt serve`` for real: a subprocess with its own data dir and Prefect home, its own local Prefect
server, runner, dispatcher and static server; POST over HTTP, poll to ``verified``, fetch the live URL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from core.store import Store
from tests.integration.api.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    base: str
    key: str
    data_dir: Path
    output: Path
    process: subprocess.Popen[bytes]


def _wait(predicate: object, timeout: float, what: str, served: Served) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert served.process.poll() is None, f"pombolt serve exited early:\n{served.output.read_text()}"
        assert time.monotonic() < deadline, f"{what} not within {timeout}s:\n{served.output.read_text()}"
        time.sleep(0.5)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    data = tmp_path / "data"
    store = Store(f"sqlite:///{data / 'pombolt.db'}")
    data.mkdir()
    store.init()
    _row, key = store.create_api_key("acme")
    store.engine.dispose()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_", "PREFECT_UI_"))}
    env.update(POMBOLT_DATA_DIR=str(data), PREFECT_HOME=str(tmp_path / "prefect"))
    env.pop("PREFECT_LOCAL_STORAGE_PATH", None)
    output = tmp_path / "serve.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so the finalizer can end everything
        )
    s = Served(f"http://127.0.0.1:{port}", key, data, output, process)
    try:
        _wait(lambda: "status page:" in output.read_text(), 180, "serve start-up", s)
        yield s
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        try:
            os.killpg(process.pid, signal.SIGKILL)  # anything a child left behind
        except ProcessLookupError:
            pass


def test_serve_posts_dispatches_runs_verifies_and_serves_the_live_site(served: Served) -> None:
    headers = {"Authorization": f"Bearer {served.key}"}
    with httpx.Client(base_url=served.base, headers=headers, timeout=10) as api:
        assert api.get("/healthz").json() == {"status": "ok", "database": "ok", "prefect": "ok"}
        assert "Prefect UI:   http://127.0.0.1:" in served.output.read_text()
        r = api.post("/api/requirements", json={"requirements": "a pomodoro timer with a task list"})
        assert r.status_code == 202, r.text
        status_url = r.json()["status_url"]
        seen: list[str] = []

        def verified() -> bool:
            body = api.get(status_url).json()
            seen.append(body["status"])
            assert body["status"] != "failed", body["latest_run"]["error"]
            return bool(body["status"] == "verified")

        _wait(verified, 150, "a verified run", served)
        body = api.get(status_url).json()
        run = body["latest_run"]
        assert [p["name"] for p in run["phases"]][-1] == "verify"
        assert run["prefect_url"].startswith("http://127.0.0.1:") and run["flow_run_id"] in run["prefect_url"]
        assert "dispatched" in seen or "running" in seen
        page = httpx.get(body["live_url"], timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(40) == 0
    assert "stopping" in served.output.read_text()
