"""Latency of ``POST /api/requirements`` beside a bare FastAPI endpoint doing one insert on the same database.

Both run under uvicorn on 127.0.0.1 in their own processes with the same server settings, on one SQLite state
store (same engine settings: WAL, ``synchronous=NORMAL``; the API process also moves WAL checkpoints to a
background thread, which serves the shared database of both) in a temporary data dir; each is measured at 1 and at
50 concurrent clients, in several rounds of the same run, the two endpoints taking turns going first so that a
burst of load from elsewhere on the machine hits both alike. Prints each round and the pooled p50/p99 (ms) and
p99 ratio (target: the API p99 at most 2x the bare endpoint p99), with the machine's cores and load.

    .venv/bin/python bench/api_latency.py [--requests 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def bare_app() -> object:
    """A FastAPI app whose one endpoint inserts one row into the same database."""
    from fastapi import FastAPI
    from sqlalchemy import text

    from core.runtime import get_store

    engine = get_store().engine
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_row (id INTEGER PRIMARY KEY, body TEXT)"))
    app = FastAPI()

    @app.post("/bare", status_code=202)
    def bare(body: dict[str, str]) -> dict[str, str]:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO bench_row (body) VALUES (:b)"), {"b": body.get("requirements", "")})
        return {"status": "queued"}

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(factory: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", factory, "--factory", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit(f"{factory} did not start; see {log}") from None
            time.sleep(0.1)
    return proc, f"http://127.0.0.1:{port}"


def measure(url: str, headers: dict[str, str], clients: int, total: int, tag: str) -> list[float]:
    """Send ``total`` POSTs from ``clients`` threads; return each latency in ms."""
    per = max(1, total // clients)
    latencies: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def worker(n: int) -> None:
        mine = []
        with httpx.Client(headers=headers, timeout=60) as client:
            barrier.wait()
            for i in range(per):
                body = {"requirements": f"{tag} {n} {i} a pomodoro timer"}
                t0 = time.perf_counter()
                r = client.post(url, json=body)
                mine.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 202:
                    raise SystemExit(f"{url} answered {r.status_code}: {r.text[:200]}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    # The client's garbage collector is off while requests are timed, as timeit does: a collection in this
    # process stalls all its client threads at once, and once it landed in a run it added ~0.3 s to all 50
    # requests in flight, the p99 of whichever endpoint was being measured.
    gc.collect()
    gc.disable()
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        gc.enable()
    return latencies


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def machine() -> str:
    """Cores and load average now (the machine may be shared: compare figures within one run only)."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, load average {load} (1/5/15 min)"


def sqlite_settings() -> str:
    """The journal mode and sync level both endpoints write with (they share one engine configuration)."""
    from core.runtime import get_store

    with get_store().engine.connect() as conn:
        journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        level = conn.exec_driver_sql("PRAGMA synchronous").scalar_one()
    sync = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[int(level)]
    return f"journal_mode={journal}, synchronous={sync}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300, help="requests per level, endpoint and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the endpoints alternate going first")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pombolt-bench-"))
    env = {**os.environ, "POMBOLT_DATA_DIR": str(tmp / "data"), "PREFECT_HOME": str(tmp / "prefect"),
           "POMBOLT_API_RATE_LIMIT": "1000000/second", "PYTHONPATH": str(ROOT)}  # fmt: skip
    env.pop("PREFECT_API_URL", None)
    env.pop("POMBOLT_DATABASE_URL", None)
    os.environ.update({k: env[k] for k in ("POMBOLT_DATA_DIR", "PREFECT_HOME")})
    os.environ.pop("POMBOLT_DATABASE_URL", None)
    from core.runtime import get_store

    _row, key = get_store().create_api_key("bench")
    api, api_url = start("api.app:create_app", env, tmp / "api.log")
    bare, bare_url = start("bench.api_latency:bare_app", env, tmp / "bare.log")
    endpoints = {
        "POST /api/requirements": (api_url + "/api/requirements", {"Authorization": f"Bearer {key}"}, api.pid),
        "bare insert": (bare_url + "/bare", {}, bare.pid),
    }
    gc.collect()
    gc.freeze()  # this client imported Pom-Bolt to make the key: keep the GC off that heap (see measure)
    try:
        print(f"machine: {machine()}; SQLite {sqlite_settings()}")
        for url, headers, _pid in endpoints.values():
            measure(url, headers, 1, 20, "warm")
        pooled: dict[tuple[str, int], list[float]] = {}
        cpu: dict[str, float] = dict.fromkeys(endpoints, 0.0)
        # server CPU per request: what each request costs the server process, whatever else the machine runs
        print(f"{'round':<7}{'endpoint':<26}{'clients':>8}{'n':>6}{'p50 ms':>9}{'p99 ms':>9}{'cpu ms/req':>12}")
        for rnd in range(1, args.rounds + 1):
            for clients in (1, 50):
                names = list(endpoints) if rnd % 2 else list(reversed(endpoints))
                for name in names:
                    url, headers, pid = endpoints[name]
                    before = cpu_seconds(pid)
                    lat = measure(url, headers, clients, args.requests, f"r{rnd}c{clients}")
                    used = cpu_seconds(pid) - before
                    cpu[name] += used
                    pooled.setdefault((name, clients), []).extend(lat)
                    print(
                        f"{rnd:<7}{name:<26}{clients:>8}{len(lat):>6}{pct(lat, 50):>9.2f}{pct(lat, 99):>9.2f}"
                        f"{used * 1000 / len(lat):>12.2f}"
                    )
        print(f"all rounds pooled (machine now: {machine()})")
        for clients in (1, 50):
            for name in endpoints:
                lat = pooled[(name, clients)]
                print(f"{'all':<7}{name:<26}{clients:>8}{len(lat):>6}{pct(lat, 50):>9.2f}{pct(lat, 99):>9.2f}")
            api_p99 = pct(pooled[("POST /api/requirements", clients)], 99)
            bare_p99 = pct(pooled[("bare insert", clients)], 99)
            print(f"  p99 ratio at {clients} client(s): {api_p99 / bare_p99:.2f}x (target <= 2x)")
        n = sum(len(pooled[("bare insert", c)]) for c in (1, 50))
        per = {name: used * 1000 / n for name, used in cpu.items()}
        print(
            f"server CPU per request: POST /api/requirements {per['POST /api/requirements']:.2f} ms, "
            f"bare insert {per['bare insert']:.2f} ms"
        )
    finally:
        for proc in (api, bare):
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
