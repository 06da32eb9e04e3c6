"""The lifecycle of the detached local static server that serves local sites (DESIGN §8, embedded mode).

``ensure_running(settings)`` starts ``python -m ops.static_server serve --root <data_dir>/sites ...`` as a
detached process (its own session, output to ``<data_dir>/static-server.log``), records it in the pidfile
``<data_dir>/static-server.json`` and waits until it answers; a server that is already running for the same
root is reused. ``status`` tells whether it runs, ``stop`` ends it (``pombolt stop``).

Each site is its own origin: site ``<site>`` is served at :func:`site_url` = ``http://<site>.localhost:<port>/``
(browsers resolve ``*.localhost`` to loopback, RFC 6761; Pom-Bolt's HTTP client does so itself, see
:mod:`core.localhost`), chosen by the ``Host`` header, so one tenant's generated app cannot read another's storage
or cookies. The bare host (``127.0.0.1``, ``localhost``) serves only the health endpoint.

The server itself lives in :mod:`ops.static_server` (a process, on a floor above the Blocks): it is started
by its module name, never imported from here. It answers ``GET`` :data:`HEALTH_PATH` with ``{"service",
"pid", "root"}``, so a reused port is known to be ours, and exits with :data:`EXIT_PORT_TAKEN` when its port
is taken.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from core.errors import ConfigError

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = [
    "EXIT_PORT_TAKEN",
    "HEALTH_PATH",
    "SERVER_MODULE",
    "SERVICE",
    "SITE_DOMAIN",
    "SITE_LABEL",
    "ServerInfo",
    "check_loopback",
    "ensure_running",
    "server_url",
    "site_url",
    "sites_root",
    "status",
    "stop",
]

HEALTH_PATH = "/__pombolt_health"
SERVICE = "pombolt-static"
SERVER_MODULE = "ops.static_server"
"""The module the server process runs (``python -m ops.static_server serve ...``)."""
EXIT_PORT_TAKEN = 2
"""The server's exit code when its port is taken."""
SITE_DOMAIN = "localhost"
"""Sites are served on subdomains of it: ``<site>.localhost`` (RFC 6761: always loopback)."""
SITE_LABEL = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
"""A site id as a host name label (DNS labels are at most 63 characters)."""
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
_PROJECT_DIR = Path(__file__).resolve().parents[2]
_spawned: dict[int, subprocess.Popen[bytes]] = {}  # children of this process, so they get reaped


class ServerInfo(BaseModel):
    """A running static server, as recorded in the pidfile."""

    model_config = ConfigDict(frozen=True)

    pid: int
    host: str
    port: int
    url: str
    root: str


# --- paths ---------------------------------------------------------------------------------------
def sites_root(settings: Settings) -> Path:
    """The folder the server serves: ``<data_dir>/sites``."""
    return settings.data_dir / "sites"


def pidfile_path(settings: Settings) -> Path:
    """The pidfile: ``<data_dir>/static-server.json``."""
    return settings.data_dir / "static-server.json"


def log_path(settings: Settings) -> Path:
    """The server's log: ``<data_dir>/static-server.log``."""
    return settings.data_dir / "static-server.log"


# --- control -------------------------------------------------------------------------------------
def status(settings: Settings) -> ServerInfo | None:
    """The running server of this data dir, or None (no pidfile, dead process, or not answering as ours)."""
    info = _read_pidfile(pidfile_path(settings))
    if info is None or not _alive(info.pid):
        return None
    health = _health(info.host, info.port)
    if health is None or health.get("pid") != info.pid or health.get("service") != SERVICE:
        return None
    return info


def ensure_running(settings: Settings, *, timeout: float = START_TIMEOUT) -> ServerInfo:
    """Return the running server for ``<data_dir>/sites``, starting one when needed.

    Args:
        settings: Data dir, ``static_host`` (loopback only) and ``static_port`` (0 = a free port).
        timeout: Most seconds to wait for a new server to answer.

    Returns:
        The server's pid, address, URL and root.

    Raises:
        ConfigError: When the host is not loopback, the configured port is taken by something else, or
            the server does not come up (the message points at the log).
    """
    host, wanted = settings.static_host, settings.static_port
    check_loopback(host)
    settings.ensure_data_dir()
    root = sites_root(settings).resolve()
    root.mkdir(parents=True, exist_ok=True)
    with _locked(settings.data_dir / "static-server.lock"):
        current = status(settings)
        if current and Path(current.root) == root and current.host == host and wanted in (0, current.port):
            return current
        if current:
            stop(settings)
        attempts = 1 if wanted else 3  # a free port can be taken between our probe and the child's bind
        for attempt in range(1, attempts + 1):
            port = wanted or _free_port(host)
            if wanted and not _port_free(host, port):
                raise _port_taken(port)
            try:
                return _start(settings, root, host, port, timeout)
            except _BindFailed as exc:
                if wanted:
                    raise _port_taken(port) from exc
                if attempt == attempts:
                    raise ConfigError(f"the static server could not bind a free port on {host}") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def stop(settings: Settings, *, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the data dir's server and remove its pidfile.

    Returns:
        True when a running server was stopped, False when none was running.
    """
    path = pidfile_path(settings)
    info = _read_pidfile(path)
    if info is None:
        return False
    stopped = False
    if _alive(info.pid) and _is_ours(info):
        _terminate(info.pid, timeout)
        stopped = True
    path.unlink(missing_ok=True)
    return stopped


# --- internals -----------------------------------------------------------------------------------
class _BindFailed(Exception):
    """The child could not bind its port."""


def server_url(host: str, port: int) -> str:
    """The base URL of a server on ``host``:``port`` (IPv6 hosts in brackets)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def site_url(port: int, site: str) -> str:
    """The live URL of site ``site`` on a server on ``port``: its own origin, ``http://<site>.localhost:<port>/``.

    Raises:
        ConfigError: When ``site`` is not a valid host name label.
    """
    if not SITE_LABEL.fullmatch(site):
        raise ConfigError(f"site id {site!r} cannot be a host name label (a-z, 0-9, '-', at most 63)")
    return f"http://{site}.{SITE_DOMAIN}:{port}/"


def check_loopback(host: str) -> None:
    """Refuse a host that is not a loopback address: the server must never be reachable from outside.

    Raises:
        ConfigError: Naming the host.
    """
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(f"static server host {host!r} is not a loopback address; use 127.0.0.1 or ::1")


def _port_taken(port: int) -> ConfigError:
    return ConfigError(
        f"port {port} for the local static server is already in use by another program; "
        "set POMBOLT_STATIC_PORT to a free port, or to 0 to pick one automatically"
    )


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _free_port(host: str) -> int:
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_free(host: str, port: int) -> bool:
    """Whether the server could bind ``port`` (same SO_REUSEADDR as the server)."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _start(settings: Settings, root: Path, host: str, port: int, timeout: float) -> ServerInfo:
    """Spawn the detached server, record it, and wait until it answers."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PROJECT_DIR), env.get("PYTHONPATH")) if p)
    log = log_path(settings)
    argv = [sys.executable, "-m", SERVER_MODULE, "serve", "--root", str(root), "--host", host]
    try:
        with log.open("ab") as out:
            offset = out.tell()
            proc = subprocess.Popen(
                [*argv, "--port", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=settings.data_dir,
                env=env,
                start_new_session=True,
            )
    except OSError as exc:
        raise ConfigError(f"cannot start the static server ({exc.strerror or exc}); see {log}") from exc
    _spawned[proc.pid] = proc
    info = ServerInfo(pid=proc.pid, host=host, port=port, url=server_url(host, port), root=str(root))
    _write_pidfile(pidfile_path(settings), info)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            _forget(settings, proc.pid)
            if code == EXIT_PORT_TAKEN:
                raise _BindFailed(port)
            raise ConfigError(
                f"the static server exited with code {code} while starting: {_tail(log, offset)} (log: {log})"
            )
        health = _health(host, port)
        if health and health.get("pid") == proc.pid:
            return info
        time.sleep(0.05)
    _terminate(proc.pid, STOP_TIMEOUT)
    _forget(settings, proc.pid)
    raise ConfigError(f"the static server did not answer on {info.url} within {timeout:.0f} s; see {log}")


def _forget(settings: Settings, pid: int) -> None:
    _spawned.pop(pid, None)
    info = _read_pidfile(pidfile_path(settings))
    if info is not None and info.pid == pid:
        pidfile_path(settings).unlink(missing_ok=True)


def _tail(log: Path, offset: int) -> str:
    try:
        with log.open("rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace").strip()
    except OSError:
        return "(no log)"
    return text[-500:] or "(no output)"


def _health(host: str, port: int) -> dict[str, Any] | None:
    """GET the health endpoint; None when nothing (or something else) answers."""
    conn = http.client.HTTPConnection(host, port, timeout=1.0)
    try:
        conn.request("GET", HEALTH_PATH)
        response = conn.getresponse()
        if response.status != 200:
            return None
        data = json.loads(response.read(4096))
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()
    return data if isinstance(data, dict) else None


def _alive(pid: int) -> bool:
    proc = _spawned.get(pid)
    if proc is not None:
        return proc.poll() is None  # also reaps our own child
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _is_ours(info: ServerInfo) -> bool:
    """Whether ``info.pid`` is really our server (never signal a recycled pid)."""
    health = _health(info.host, info.port)
    if health is not None and health.get("pid") == info.pid and health.get("service") == SERVICE:
        return True
    try:
        args = Path(f"/proc/{info.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return SERVER_MODULE.encode() in args and b"serve" in args


def _terminate(pid: int, timeout: float) -> None:
    """SIGTERM, wait (bounded), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                _spawned.pop(pid, None)
                return
            time.sleep(0.02)


def _read_pidfile(path: Path) -> ServerInfo | None:
    try:
        return ServerInfo.model_validate_json(path.read_bytes())
    except (OSError, ValueError):
        return None


def _write_pidfile(path: Path, info: ServerInfo) -> None:
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(info.model_dump_json())
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock so two processes do not start two servers."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
