"""Latency of ``POST /api/requirements`` beside a bare FastAPI endpoint doing one insert on the same database.

Both run under uvicorn on 127.0.0.1 in their own processes, on one SQLite state store in a temporary data dir;
each is measured at 1 and at 50 concurrent clients in the same run. Prints p50/p99 (ms) and the p99 ratio
(target: the API p99 at most 2x the bare endpoint p99).

    .venv/bin/python bench/api_latency.py [--requests 300]
"""

from __future__ import annotations

import argparse
import os
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
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300, help="requests per level and endpoint")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pombolt-bench-"))
    env = {**os.environ, "POMBOLT_DATA_DIR": str(tmp / "data"), "PREFECT_HOME": str(tmp / "prefect"),
           "POMBOLT_API_RATE_LIMIT": "1000000/second", "PYTHONPATH": str(ROOT)}  # fmt: skip
    env.pop("PREFECT_API_URL", None)
    os.environ.update({k: env[k] for k in ("POMBOLT_DATA_DIR", "PREFECT_HOME")})
    from core.runtime import get_store

    _row, key = get_store().create_api_key("bench")
    api, api_url = start("api.app:create_app", env, tmp / "api.log")
    bare, bare_url = start("bench.api_latency:bare_app", env, tmp / "bare.log")
    try:
        auth = {"Authorization": f"Bearer {key}"}
        measure(api_url + "/api/requirements", auth, 1, 20, "warm")
        measure(bare_url + "/bare", {}, 1, 20, "warm")
        print(f"{'endpoint':<26}{'clients':>8}{'n':>6}{'p50 ms':>9}{'p99 ms':>9}")
        for clients in (1, 50):
            row = {}
            for name, url, headers in (
                ("POST /api/requirements", api_url + "/api/requirements", auth),
                ("bare insert", bare_url + "/bare", {}),
            ):
                lat = measure(url, headers, clients, args.requests, f"c{clients}")
                row[name] = pct(lat, 99)
                print(f"{name:<26}{clients:>8}{len(lat):>6}{pct(lat, 50):>9.2f}{pct(lat, 99):>9.2f}")
            print(f"  p99 ratio at {clients} client(s): {row['POST /api/requirements'] / row['bare insert']:.2f}x")
    finally:
        for proc in (api, bare):
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
