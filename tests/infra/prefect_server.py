"""A real Prefect server in a subprocess on a free 127.0.0.1 port, with its own PREFECT_HOME.

Optionally on PostgreSQL (``database_url``, an asyncpg URL) and with an auth string. The process runs in its
own process group and is stopped by PID in the finalizer; its log stays in ``home/server.log``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.infra import free_port

PREFECT = str(Path(sys.executable).with_name("prefect"))


@dataclass
class PrefectServer:
    """A running server: its API URL and the environment a client process needs to talk to it."""

    api_url: str
    home: Path
    pid: int
    auth_string: str | None = None
    log: Path = field(default_factory=Path)

    def client_env(self, home: Path | None = None) -> dict[str, str]:
        """Environment for a CLI, worker or test process that uses this server (own PREFECT_HOME)."""
        env = {
            "PREFECT_API_URL": self.api_url,
            "PREFECT_HOME": str(home or self.home / "client"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
        if self.auth_string:
            env["PREFECT_API_AUTH_STRING"] = self.auth_string
        return env


def _stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@contextmanager
def prefect_server(
    home: Path, *, database_url: str | None = None, auth_string: str | None = None, timeout: float = 90.0
) -> Iterator[PrefectServer]:
    """Start ``prefect server start`` and wait (bounded) until ``/api/health`` answers; stop it afterwards."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_UI_URL": f"http://127.0.0.1:{port}",  # links in notifications (the UI itself is off)
    }
    env.pop("PREFECT_API_URL", None)
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    if auth_string:
        env["PREFECT_SERVER_API_AUTH_STRING"] = auth_string
    log = home / "server.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    api_url = f"http://127.0.0.1:{port}/api"
    auth = tuple(auth_string.split(":", 1)) if auth_string and ":" in auth_string else None
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prefect server exited with {proc.returncode}: {log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{api_url}/health", timeout=1.0, auth=auth).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"prefect server not healthy in {timeout:.0f} s: {log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield PrefectServer(api_url=api_url, home=home, pid=proc.pid, auth_string=auth_string, log=log)
    finally:
        _stop(proc)
