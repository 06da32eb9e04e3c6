"""``pombolt serve``: the API (with its dispatcher), a runner for the flow deployment, the local static
server and — when ``PREFECT_API_URL`` is unset — a local Prefect server with its UI, in one command.

Every child is started with :class:`subprocess.Popen` (so it stops promptly on SIGTERM), waited for with
bounded loops, and stopped — newest first — when this process gets Ctrl-C or SIGTERM, or when any child dies.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from core.errors import ConfigError
from core.runtime import configure_prefect_env
from core.settings import Settings, get_settings

START_TIMEOUT = 90.0
STOP_TIMEOUT = 10.0


@dataclass
class Child:
    """One process ``pombolt serve`` started."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    handle: IO[bytes] = field(repr=False)


@dataclass
class Supervisor:
    """Starts children, notices when one dies, and stops them all (newest first)."""

    log_dir: Path
    env: dict[str, str]
    children: list[Child] = field(default_factory=list)
    cleanups: list[Callable[[], Any]] = field(default_factory=list)

    def start(self, name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> Child:
        """Start ``argv`` with the shared environment; its output goes to ``<log_dir>/<name>.log``."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        handle = log.open("ab")
        process = subprocess.Popen(
            argv,
            env={**self.env, **(extra_env or {})},
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        child = Child(name, process, log, handle)
        self.children.append(child)
        return child

    def dead(self) -> Child | None:
        """The first child that has exited, if any."""
        return next((c for c in self.children if c.process.poll() is not None), None)

    def wait_until(self, child: Child, ready: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
        """Wait (bounded) until ``ready()``; fail early when the child exits.

        Raises:
            ConfigError: When the child exits or does not get ready in time (names its log).
        """
        deadline = time.monotonic() + timeout
        while not ready():
            if child.process.poll() is not None:
                raise ConfigError(f"{what} exited with code {child.process.returncode}; see {child.log}")
            if time.monotonic() > deadline:
                raise ConfigError(f"{what} was not ready after {timeout:.0f}s; see {child.log}")
            time.sleep(0.2)

    def stop_all(self) -> None:
        """SIGTERM every child, newest first; SIGKILL what is still alive after ``STOP_TIMEOUT``."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.terminate()
            try:
                child.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait(STOP_TIMEOUT)
            child.handle.close()
        self.children.clear()
        for cleanup in reversed(self.cleanups):
            cleanup()
        self.cleanups.clear()


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free on ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _prefect_healthy(api_url: str) -> bool:
    from prefect.client.orchestration import SyncPrefectClient

    try:
        with SyncPrefectClient(api_url, httpx_settings={"timeout": 2.0}) as client:
            return client.api_healthcheck() is None
    except Exception:
        return False


def _api_up(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    say: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> int:
    """Run everything until Ctrl-C/SIGTERM (or ``stop`` is set); return the exit code.

    Args:
        host: Address of the API (loopback by default).
        port: Port of the API (0 picks a free one).
        say: Where the URLs and status lines go.
        stop: Set it to stop (tests); SIGINT and SIGTERM also stop.
    """
    settings: Settings = get_settings()
    settings.ensure_data_dir()
    configure_prefect_env(settings)
    stop = stop or threading.Event()
    env = {**os.environ, "PREFECT_RUNNER_POLL_FREQUENCY": os.environ.get("PREFECT_RUNNER_POLL_FREQUENCY", "1")}
    sup = Supervisor(settings.data_dir / "logs" / "serve", env)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        ui = _start_prefect(sup, env, say)
        _start_static(sup, settings, say)
        port = port or free_port(host)
        api_env = {"POMBOLT_API_DISPATCHER": "true"}
        if ui:
            api_env.setdefault("POMBOLT_API_PREFECT_UI_URL", ui)
        api = sup.start(
            "api",
            [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", host, "--port", str(port)],
            api_env,
        )
        sup.start("runner", [sys.executable, "-m", "ops.flow_runner"])
        sup.start("reconciler", [sys.executable, "-m", "ops.reconciler"])  # crashed and stuck runs
        sup.wait_until(api, lambda: _api_up(host, port), "the API server")
        say(f"API:          http://{host}:{port}/api  (docs: http://{host}:{port}/docs)")
        say(f"status page:  http://{host}:{port}/")
        say(f"Prefect UI:   {ui or '(set by PREFECT_API_URL)'}")
        say(f"logs:         {sup.log_dir}")
        while not stop.wait(0.5):
            dead = sup.dead()
            if dead is not None:
                say(f"{dead.name} exited with code {dead.process.returncode}; stopping (see {dead.log})")
                return 1
        say("stopping…")
        return 0
    except ConfigError as exc:
        say(f"error: {exc.message}")
        return 1
    finally:
        sup.stop_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _start_prefect(sup: Supervisor, env: dict[str, str], say: Callable[[str], None]) -> str | None:
    """Start a local Prefect server unless ``PREFECT_API_URL`` is set; return the UI URL."""
    configured = env.get("PREFECT_API_URL")
    if configured:
        say(f"using the Prefect server at {configured}")
        return configured[: -len("/api")] if configured.endswith("/api") else None
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    child = sup.start(
        "prefect-server",
        [_bin("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port), "--analytics-off"],
    )
    say(f"starting a local Prefect server on 127.0.0.1:{port} …")
    sup.wait_until(child, lambda: _prefect_healthy(api_url), "the Prefect server")
    env["PREFECT_API_URL"] = api_url
    os.environ["PREFECT_API_URL"] = api_url  # this process (static server checks, Block loads) uses it too
    return f"http://127.0.0.1:{port}"


def _start_static(sup: Supervisor, settings: Settings, say: Callable[[str], None]) -> None:
    """Make sure the local static server runs; stop it at the end only when we started it."""
    from blocks.targets.static_host import ensure_running, status
    from blocks.targets.static_host import stop as stop_static

    was_running = status(settings) is not None
    info = ensure_running(settings)
    say(f"static sites: http://<site>.localhost:{info.port}/ (one origin per site)")
    if not was_running:
        sup.cleanups.append(lambda: stop_static(settings))
