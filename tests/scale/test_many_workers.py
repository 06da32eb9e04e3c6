"""Many workers on PostgreSQL: a Prefect server on PostgreSQL with an auth string, the state store on
PostgreSQL, deployments from ``prefect deploy --all``, 3 process workers (each its own PREFECT_HOME), and a
burst of projects dispatched at once. All reach ``verified`` with exactly one flow run each, the runs spread
over more than one worker, and no client saw a 5xx from the server.

Not yet the full issue-9 scale test: the projects share one POMBOLT_DATA_DIR (local Git and the local static
site) instead of the fake GitHub and S3Website on moto, and they are submitted through the dispatcher rather
than the HTTP API. ``POMBOLT_SCALE_PROJECTS`` sets the burst size (default 6; the issue asks for 30).
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.models import RunStatus
from core.settings import get_settings
from core.store import Store
from tests.infra.postgres import postgres
from tests.infra.prefect_server import PrefectServer, prefect_server
from usecases.submit import Submission, submit

pytestmark = pytest.mark.scale

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORKERS = 3
PROJECTS = int(os.environ.get("POMBOLT_SCALE_PROJECTS", "6"))


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrefectServer, str]]:
    """PostgreSQL with databases for Prefect and for Pom-Bolt, and a Prefect server on it with an auth string."""
    with postgres("prefect", databases=("pombolt",)) as pg:
        auth = f"admin:{secrets.token_urlsafe(16)}"
        home = tmp_path_factory.mktemp("pg-prefect")
        with prefect_server(home, database_url=pg.asyncpg_url, auth_string=auth) as srv:
            yield srv, pg.psycopg_url.replace("/prefect", "/pombolt")


def test_a_burst_of_projects_runs_on_three_workers(
    stack: tuple[PrefectServer, str], data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, state_url = stack
    started = time.monotonic()
    monkeypatch.setenv("POMBOLT_DATABASE_URL", state_url)
    get_settings.cache_clear()
    base_env = {**os.environ, "POMBOLT_DATA_DIR": str(data_dir), "POMBOLT_DATABASE_URL": state_url}

    def env_for(name: str) -> dict[str, str]:
        return {**base_env, **server.client_env(tmp_path / f"home-{name}"), "PREFECT_WORKER_QUERY_SECONDS": "1"}

    for argv in ([str(BIN / "pombolt"), "init"], [str(BIN / "prefect"), "--no-prompt", "deploy", "--all"]):
        done = subprocess.run(argv, cwd=ROOT, env=env_for("cli"), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{argv[1:]}: {done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    deployed_at = time.monotonic()

    workers, logs = [], []
    try:
        for i in range(WORKERS):
            log = tmp_path / f"worker-{i}.log"
            logs.append(log)
            with log.open("ab") as out:
                workers.append(
                    subprocess.Popen(
                        [
                            str(BIN / "prefect"),
                            "worker",
                            "start",
                            "--pool",
                            "pombolt",
                            "--name",
                            f"w{i}",
                            "--limit",
                            "2",
                        ],
                        cwd=tmp_path,
                        env=env_for(f"w{i}"),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        store = Store(state_url)
        store.init()
        runs = [
            submit(store, "scale", Submission(requirements=f"a counter number {i}", name=f"p{i}"), get_settings())[1]
            for i in range(PROJECTS)
        ]
        from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

        from usecases.dispatch import Dispatcher

        # the dispatcher takes URL and auth string from Prefect's settings (its explicit api_url sends no auth)
        with temporary_settings({PREFECT_API_URL: server.api_url, PREFECT_API_AUTH_STRING: server.auth_string}):
            assert Dispatcher(store).dispatch_once() == PROJECTS
        submitted_at = time.monotonic()

        deadline = time.monotonic() + 60 + 20 * PROJECTS
        while time.monotonic() < deadline:
            statuses = [store.reload(r).status for r in runs]
            if all(s in (RunStatus.verified, RunStatus.failed) for s in statuses):
                break
            time.sleep(0.5)
        finals = [store.reload(r) for r in runs]
        from prefect.client.orchestration import SyncPrefectClient

        # a run is verified just before its flow returns: wait for the flow runs to complete before stopping
        with SyncPrefectClient(server.api_url, auth_string=server.auth_string) as client:
            while time.monotonic() < deadline:
                states = [client.read_flow_run(r.flow_run_id).state for r in finals]  # type: ignore[arg-type]
                if all(s is not None and s.is_final() for s in states):
                    break
                time.sleep(0.5)
    finally:
        for proc in workers:
            _stop(proc)
        from blocks.targets.static_host import stop

        stop(get_settings())
    done_at = time.monotonic()

    assert [r.status for r in finals] == [RunStatus.verified] * PROJECTS, [
        (r.status, r.error_code, r.error_message) for r in finals
    ]
    text = {log.name: log.read_text(errors="replace") for log in logs}
    # several workers may try a flow run; the losers log "Aborted submission" (the server kept one Pending)
    per_worker = {
        name: set(re.findall(r"submitting flow run '([0-9a-f-]{36})'", body))
        - set(re.findall(r"Aborted submission of flow run '([0-9a-f-]{36})'", body))
        for name, body in text.items()
    }
    taken = [fr for ids in per_worker.values() for fr in ids]
    assert sorted(taken) == sorted(r.flow_run_id for r in finals), "each run: exactly one flow run, on one worker"
    assert sum(1 for ids in per_worker.values() if ids) > 1, f"runs did not spread: {per_worker}"
    for name, body in text.items():
        fives = re.findall(r"(?:status code |Server error '|HTTP/1\.1\" )5\d\d.*", body)
        assert not fives, f"{name} saw a 5xx from the Prefect server: {fives[:3]}"
        assert "database is locked" not in body, name

    assert all(s is not None and s.is_completed() for s in states)
    print(
        f"\nscale: {PROJECTS} projects on {WORKERS} workers: setup {deployed_at - started:.1f}s, "
        f"submit→all verified {done_at - submitted_at:.1f}s "
        f"({PROJECTS / max(done_at - submitted_at, 0.001) * 60:.1f} projects/min), "
        f"spread {[len(v) for v in per_worker.values()]}"
    )
