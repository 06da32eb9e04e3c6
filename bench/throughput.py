"""Throughput on the scale-out stack: projects/minute and submit→verified latency for 1, 2 and 3 workers,
beside a bare 4-task Prefect deployment on the same stack in the same run (so our overhead is a ratio).

Stack, all on 127.0.0.1 and thrown away at the end: a PostgreSQL cluster (``tests/infra/postgres.py``), a
Prefect server on it with an auth string, the deployments of ``prefect.yaml`` plus the bare flow below,
N process workers on pool ``pombolt``. Projects use the offline generator, local Git and the local static
site in one shared data dir; they are queued in the state store (PostgreSQL) and sent by the API's
dispatcher. Usage, from the repo root::

    .venv/bin/python -m bench.throughput [PROJECTS_PER_ROUND]
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench._common import cleanup, isolate, machine, median, p95

ROOT = Path(__file__).resolve().parents[1]
TMP = isolate("throughput", {"PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "ERROR"})
BIN = Path(sys.executable).parent

from prefect import flow, task  # noqa: E402 - Prefect reads the environment isolate() set, at import


@task(persist_result=True)
def _step(run_id: str, n: int) -> str:
    return f"{run_id}:{n}"


@flow(name="bare-four")
def bare_four(run_id: str) -> str:
    """The baseline: 4 trivial tasks with persisted results, nothing else."""
    out = run_id
    for n in range(4):
        out = _step(out, n)
    return out


def _start_worker(env: dict[str, str], name: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(BIN / "prefect"), "worker", "start", "--pool", "pombolt", "--name", name, "--limit", "2"],
            cwd=TMP,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _summary(latencies: list[float], wall: float) -> tuple[float, float, float]:
    return len(latencies) / wall * 60, median(latencies), p95(latencies)


def _round_ours(store: Any, count: int, tag: str) -> tuple[list[float], float]:
    from core.models import RunStatus
    from core.settings import get_settings
    from usecases.dispatch import Dispatcher
    from usecases.submit import Submission, submit

    runs = [
        submit(store, "bench", Submission(requirements=f"a counter {tag} {i}", name=f"{tag}-{i}"), get_settings())[1]
        for i in range(count)
    ]
    start = time.monotonic()
    Dispatcher(store).dispatch_once()
    done: dict[str, float] = {}
    deadline = start + 120 + 30 * count
    while len(done) < count and time.monotonic() < deadline:
        for run in runs:
            if run.id not in done:
                status = store.reload(run).status
                if status in (RunStatus.verified, RunStatus.failed):
                    if status == RunStatus.failed:
                        raise SystemExit(f"run {run.id} failed: {store.reload(run).error_message}")
                    done[run.id] = time.monotonic() - start
        time.sleep(0.1)
    if len(done) < count:
        raise SystemExit(f"only {len(done)} of {count} runs verified in time")
    _wait_flow_runs([str(store.reload(r).flow_run_id) for r in runs])
    return list(done.values()), max(done.values())


def _round_bare(deployment_id: Any, count: int, tag: str) -> tuple[list[float], float]:
    from prefect.client.orchestration import get_client

    start = time.monotonic()
    with get_client(sync_client=True) as client:
        ids = [
            client.create_flow_run_from_deployment(deployment_id, parameters={"run_id": f"{tag}-{i}"}).id
            for i in range(count)
        ]
        done: dict[Any, float] = {}
        deadline = start + 60 + 10 * count
        while len(done) < count and time.monotonic() < deadline:
            for fid in ids:
                if fid not in done:
                    state = client.read_flow_run(fid).state
                    if state is not None and state.is_final():
                        done[fid] = time.monotonic() - start
            time.sleep(0.1)
    if len(done) < count:
        raise SystemExit(f"only {len(done)} of {count} bare flow runs finished in time")
    return list(done.values()), max(done.values())


def _wait_flow_runs(ids: list[str]) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = [client.read_flow_run(i).state for i in ids]
            if all(s is not None and s.is_final() for s in states):
                return
            time.sleep(0.2)


def main() -> None:
    """Build the stack, run the rounds, print one table."""
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    sys.path.insert(0, str(ROOT))
    from tests.infra.postgres import postgres
    from tests.infra.prefect_server import prefect_server

    print(machine())
    with postgres("prefect", databases=("pombolt",)) as pg:
        auth = f"admin:{secrets.token_urlsafe(16)}"
        with prefect_server(TMP / "server", database_url=pg.asyncpg_url, auth_string=auth) as server:
            state_url = pg.psycopg_url.replace("/prefect", "/pombolt")
            os.environ.update(
                {"PREFECT_API_URL": server.api_url, "PREFECT_API_AUTH_STRING": auth, "POMBOLT_DATABASE_URL": state_url}
            )
            from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

            env = {**os.environ, "PREFECT_WORKER_QUERY_SECONDS": "1"}
            for argv in (
                [str(BIN / "pombolt"), "init"],
                [str(BIN / "prefect"), "--no-prompt", "deploy", "--all"],
                [
                    str(BIN / "prefect"),
                    "--no-prompt",
                    "deploy",
                    "bench/throughput.py:bare_four",
                    "-n",
                    "bare",
                    "-p",
                    "pombolt",
                ],
            ):
                done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
                if done.returncode != 0:
                    raise SystemExit(f"{' '.join(argv[1:])} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
            with temporary_settings({PREFECT_API_URL: server.api_url, PREFECT_API_AUTH_STRING: auth}):
                from prefect.client.orchestration import get_client

                from core.store import Store

                with get_client(sync_client=True) as client:
                    bare_id = client.read_deployment_by_name("bare-four/bare").id
                store = Store(state_url)
                store.init()
                rows = []
                for workers in (1, 2, 3):
                    procs = [
                        _start_worker(
                            {**env, "PREFECT_HOME": str(TMP / f"w{workers}-{i}")},
                            f"w{workers}-{i}",
                            TMP / f"w{workers}-{i}.log",
                        )
                        for i in range(workers)
                    ]
                    try:
                        ours, ours_wall = _round_ours(store, count, f"r{workers}")
                        bare, bare_wall = _round_bare(bare_id, count, f"r{workers}")
                    finally:
                        for proc in procs:
                            _stop(proc)
                    rows.append((workers, _summary(ours, ours_wall), _summary(bare, bare_wall)))
    print(f"{count} projects per round, offline generator, local Git + local static site, Prefect on PostgreSQL")
    print("workers | pom-bolt projects/min  p50 s  p95 s | bare 4-task runs/min  p50 s  p95 s | p50 ratio")
    for workers, (o_rate, o_p50, o_p95), (b_rate, b_p50, b_p95) in rows:
        print(
            f"{workers:7d} | {o_rate:21.1f} {o_p50:6.1f} {o_p95:6.1f} | {b_rate:20.1f} {b_p50:6.1f} {b_p95:6.1f} | "
            f"{o_p50 / b_p50:8.2f}x"
        )
    cleanup(TMP)


if __name__ == "__main__":
    main()
