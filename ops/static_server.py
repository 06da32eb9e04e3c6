"""The local static server process: ``python -m ops.static_server serve --root DIR [--host H] [--port P]``.

:func:`blocks.targets.static_host.ensure_running` starts this module as a detached process and manages
it (pidfile, health probe, stop); this module is only the server. It binds loopback only.

Each site is its own origin, chosen by the ``Host`` header: ``<site>.localhost[:port]`` serves site ``<site>``
(``<root>/<site>``, a symlink to ``.releases/<site>/<release>``); the bare host (``127.0.0.1``, ``localhost``,
``[::1]``, the bound address) serves only ``GET /__pombolt_health`` (``{"service", "pid", "root"}``, so a reused
port is known to be ours); any other host gets 421. Sites are untrusted tenants' generated apps, so a request:

- has its path normalised first — percent-decoded once, backslashes read as slashes, empty and ``.`` segments
  dropped, ``..`` applied — and is refused (400) when it is malformed or climbs above the site's root;
- never reaches a dot-file or dot-folder at any level (404), another site, or ``.releases`` itself;
- is served from the site's current release only: the site symlink is the one link followed (and only when it
  points at ``.releases/<site>/<name>``), every other path component is opened with ``O_NOFOLLOW`` relative
  to its parent folder, and only regular files are served (a folder gives its ``index.html``; no listings).

Every response carries ``Cache-Control: no-cache`` and ``X-Content-Type-Options: nosniff``. The server exits
with code 2 when its port is taken, so the lifecycle can tell a lost race for a free port from any other failure.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import mimetypes
import os
import shutil
import signal
import socket
import stat
import sys
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from types import FrameType
from typing import Any, ClassVar, cast
from urllib.parse import quote, unquote

from blocks.targets.static_host import (
    EXIT_PORT_TAKEN,
    HEALTH_PATH,
    SERVER_MODULE,
    SERVICE,
    SITE_DOMAIN,
    SITE_LABEL,
    check_loopback,
    server_url,
)

__all__ = ["BARE", "StaticHandler", "main", "make_server", "normalise_path", "serve", "site_of_host"]

BARE = ""
"""What :func:`site_of_host` returns for the server's bare host (no site)."""
RELEASES = ".releases"
_BARE_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # NONBLOCK: a FIFO never hangs us
_CONTROL = {i: f"\\x{i:02x}" for i in (*range(0x20), 0x7F)}


class _Refused(Exception):
    """A request answered with an error status."""

    def __init__(self, status: HTTPStatus) -> None:
        super().__init__(status.phrase)
        self.status = status


def site_of_host(header: str | None, bound: str = "127.0.0.1") -> str | None:
    """The site a ``Host`` header names: a site id, :data:`BARE` for the server's own host, None for another host.

    ``<site>.localhost`` with an optional port names ``<site>`` (a lower-cased DNS label); ``127.0.0.1``,
    ``localhost``, ``[::1]`` and ``bound`` (the address the server listens on), or no header at all, are bare.
    """
    if header is None:
        return BARE
    value = header.strip().lower()
    name, port = value, ""
    if value.startswith("["):
        end = value.find("]")
        name, port = (value[: end + 1], value[end + 1 :]) if end > 0 else (value, "")
    elif ":" in value:
        name, _, rest = value.rpartition(":")
        port = ":" + rest
    if port and not (port[0] == ":" and port[1:].isascii() and port[1:].isdigit() and len(port) <= 6):
        return None
    if name in _BARE_NAMES or name in (bound, f"[{bound}]"):
        return BARE
    label, dot, domain = name.partition(".")
    if dot and domain == SITE_DOMAIN and SITE_LABEL.fullmatch(label):
        return label
    return None


def normalise_path(target: str) -> tuple[list[str], bool]:
    """The segments of a request target's path after normalisation, and whether it ended with a slash.

    Decodes percent-escapes once, reads backslashes as slashes, drops empty and ``.`` segments and applies
    ``..``; only then may any rule look at the path.

    Raises:
        _Refused: 400 when the target is not a path, does not decode, holds control characters, or climbs
            above the root.
    """
    if not target.startswith("/"):  # absolute-form, authority-form, "*": never ours to serve
        raise _Refused(HTTPStatus.BAD_REQUEST)
    path = target.split("#", 1)[0].split("?", 1)[0]
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError:
        raise _Refused(HTTPStatus.BAD_REQUEST) from None
    if any(c in _CONTROL for c in map(ord, decoded)):
        raise _Refused(HTTPStatus.BAD_REQUEST)
    raw = decoded.replace("\\", "/").split("/")
    parts: list[str] = []
    for segment in raw:
        if segment == "..":
            if not parts:
                raise _Refused(HTTPStatus.BAD_REQUEST)
            parts.pop()
        elif segment not in ("", "."):
            parts.append(segment)
    return parts, raw[-1] in ("", ".", "..")


class StaticHandler(BaseHTTPRequestHandler):
    """Serves each site of the server's root on its own host; see the module docstring for the rules."""

    server_version = "PomBoltStatic/2"
    sys_version = ""
    timeout = 30  # seconds an idle connection may hold a thread
    extensions_map: ClassVar[dict[str, str]] = {
        ".html": "text/html; charset=utf-8",
        ".htm": "text/html; charset=utf-8",
        ".js": "text/javascript; charset=utf-8",
        ".mjs": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".json": "application/json",
        ".map": "application/json",
        ".webmanifest": "application/manifest+json",
        ".svg": "image/svg+xml",
        ".png": "image/png",
        ".jpg": "image/jpeg",
        ".jpeg": "image/jpeg",
        ".gif": "image/gif",
        ".ico": "image/x-icon",
        ".webp": "image/webp",
        ".avif": "image/avif",
        ".woff": "font/woff",
        ".woff2": "font/woff2",
        ".ttf": "font/ttf",
        ".otf": "font/otf",
        ".wasm": "application/wasm",
        ".txt": "text/plain; charset=utf-8",
        ".xml": "application/xml",
    }

    @property
    def root(self) -> str:
        """The served folder (resolved at startup)."""
        return cast("_Server", self.server).root

    @property
    def bound(self) -> str:
        """The address the server listens on."""
        return str(cast("_Server", self.server).server_address[0])

    def do_GET(self) -> None:
        """Answer the health probe on the bare host, else serve a file of the Host's site."""
        self._answer(body=True)

    def do_HEAD(self) -> None:
        """Like GET without a body."""
        self._answer(body=False)

    def end_headers(self) -> None:
        """Add ``Cache-Control: no-cache`` and ``X-Content-Type-Options: nosniff`` to every response."""
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log only failed requests (keep the log quiet)."""
        if str(code).isdigit() and int(code) >= 400:
            super().log_request(code, size)

    def log_message(self, format: str, *args: Any) -> None:
        """Write one line to stderr (the log file), control characters escaped."""
        line = f"{self.log_date_time_string()} {self.address_string()} {format % args}"
        sys.stderr.write(line.translate(_CONTROL) + "\n")

    # --- internals -------------------------------------------------------------------------------
    def _answer(self, *, body: bool) -> None:
        try:
            hosts = self.headers.get_all("Host") or []
            if len(hosts) > 1:
                raise _Refused(HTTPStatus.BAD_REQUEST)
            site = site_of_host(hosts[0] if hosts else None, self.bound)
            if site is None:
                raise _Refused(HTTPStatus.MISDIRECTED_REQUEST)
            parts, slash = normalise_path(self.path)
            if site == BARE:
                if parts != [HEALTH_PATH.strip("/")]:
                    raise _Refused(HTTPStatus.NOT_FOUND)
                self._send(HTTPStatus.OK, "application/json", self._health(), body)
                return
            if any(part.startswith(".") for part in parts):
                raise _Refused(HTTPStatus.NOT_FOUND)
            self._serve_file(site, parts, slash, body)
        except _Refused as refused:
            self.send_error(refused.status)

    def _health(self) -> bytes:
        return json.dumps({"service": SERVICE, "pid": os.getpid(), "root": self.root}).encode()

    def _send(self, status: HTTPStatus, content_type: str, data: bytes, body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _serve_file(self, site: str, parts: list[str], slash: bool, body: bool) -> None:
        """Open ``parts`` inside the site's current release without following any link, and send it."""
        release = self._release(site)
        with contextlib.ExitStack() as stack:
            folder = stack.enter_context(_opened(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
            for name in (RELEASES, site, release, *parts[:-1]):
                folder = stack.enter_context(_opened(name, _DIR_FLAGS, folder))
            name = parts[-1] if parts else "."
            fd = stack.enter_context(_opened(name, _FILE_FLAGS, folder))
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                if not slash:
                    self._redirect("/" + "/".join(parts) + "/")
                    return
                name = "index.html"
                fd = stack.enter_context(_opened(name, _FILE_FLAGS, fd))
                info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise _Refused(HTTPStatus.NOT_FOUND)
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", self._content_type(name))
            self.send_header("Content-Length", str(info.st_size))
            self.end_headers()
            if body:
                with os.fdopen(os.dup(fd), "rb") as source, contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    shutil.copyfileobj(source, self.wfile)

    def _release(self, site: str) -> str:
        """The site's current release: where ``<root>/<site>`` points, when that is ``.releases/<site>/<name>``."""
        try:
            target = os.readlink(os.path.join(self.root, site))
        except OSError:  # missing, or not a symlink (a folder someone put there is never served)
            raise _Refused(HTTPStatus.NOT_FOUND) from None
        parts = PurePosixPath(target).parts
        if len(parts) != 3 or parts[:2] != (RELEASES, site) or parts[2].startswith("."):
            self.log_message("site %s points outside its releases (%s); not served", site, target)
            raise _Refused(HTTPStatus.NOT_FOUND)
        return parts[2]

    def _redirect(self, path: str) -> None:
        """301 to the folder's URL with a slash (a path on this origin: it starts with exactly one ``/``)."""
        query = self.path.split("#", 1)[0].partition("?")[2]
        self.send_response(HTTPStatus.MOVED_PERMANENTLY)
        self.send_header("Location", quote(path) + (f"?{query}" if query else ""))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _content_type(self, name: str) -> str:
        suffix = os.path.splitext(name)[1].lower()
        known = self.extensions_map.get(suffix) or mimetypes.guess_type(name)[0]
        return known or "application/octet-stream"


@contextlib.contextmanager
def _opened(name: str, flags: int, folder: int | None = None) -> Iterator[int]:
    """``os.open`` (relative to ``folder``), closed on exit; a missing, linked or wrong-kind entry is a 404."""
    try:
        fd = os.open(name, flags, dir_fd=folder)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EACCES, errno.ENXIO, errno.ENAMETOOLONG):
            raise _Refused(HTTPStatus.NOT_FOUND) from None
        raise
    try:
        yield fd
    finally:
        os.close(fd)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    root: str


class _Server6(_Server):
    address_family = socket.AF_INET6


def make_server(root: Path, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Bind a static server for ``root`` on a loopback address (``port`` 0 = a free port).

    Raises:
        ConfigError: When ``host`` is not a loopback address.
        OSError: When the port cannot be bound.
    """
    check_loopback(host)
    server_class = _Server6 if ":" in host else _Server
    server = server_class((host, port), StaticHandler)
    server.root = str(root.resolve())
    return server


def serve(root: Path, host: str, port: int) -> int:
    """Serve ``root`` until SIGTERM/SIGINT; the body of ``python -m ops.static_server serve``.

    Returns:
        The exit code: 0 after a stop, 2 when the port is taken, 1 when it cannot be bound otherwise.
    """
    try:
        server = make_server(root, host, port)
    except OSError as exc:
        sys.stderr.write(f"cannot bind {host}:{port}: {exc.strerror or exc}\n")
        return EXIT_PORT_TAKEN if exc.errno == errno.EADDRINUSE else 1

    def _stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    bound_port = server.server_address[1]
    sys.stderr.write(
        f"pombolt static server pid {os.getpid()} serving {root} at {server_url(host, bound_port)} "
        f"(sites at http://<site>.{SITE_DOMAIN}:{bound_port}/)\n"
    )
    with server:
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever(poll_interval=0.2)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m ops.static_server serve --root DIR [--host H] [--port P]``."""
    parser = argparse.ArgumentParser(prog=f"python -m {SERVER_MODULE}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve", help="serve a folder of sites on a loopback address")
    serve_cmd.add_argument("--root", required=True, type=Path)
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    return serve(args.root, args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
