"""The local static server process: ``python -m ops.static_server serve --root DIR [--host H] [--port P]``.

:func:`blocks.targets.static_host.ensure_running` starts this module as a detached process and manages
it (pidfile, health probe, stop); this module is only the server. It binds loopback only, serves the root
with symlinks followed (sites are symlinks to releases), hides top-level dot folders (``.releases``), lists
no directories, sends ``Cache-Control: no-cache`` and answers ``GET /__pombolt_health`` with
``{"service", "pid", "root"}`` so a reused port is known to be ours. It exits with code 2 when its port
is taken, so the lifecycle can tell a lost race for a free port from any other failure.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import io
import json
import os
import signal
import socket
import sys
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

from blocks.targets.static_host import (
    EXIT_PORT_TAKEN,
    HEALTH_PATH,
    SERVER_MODULE,
    SERVICE,
    check_loopback,
    server_url,
)

__all__ = ["StaticHandler", "main", "make_server", "serve"]


class StaticHandler(SimpleHTTPRequestHandler):
    """Serves one root: symlinks followed, no listings, no top-level dot folders, no caching."""

    server_version = "PomBoltStatic/1"
    extensions_map: ClassVar[dict[str, str]] = {  # type: ignore[misc]
        **SimpleHTTPRequestHandler.extensions_map,
        ".html": "text/html; charset=utf-8",
        ".js": "text/javascript; charset=utf-8",
        ".mjs": "text/javascript; charset=utf-8",
        ".css": "text/css; charset=utf-8",
        ".json": "application/json",
        ".svg": "image/svg+xml",
        ".png": "image/png",
        ".ico": "image/x-icon",
        ".webp": "image/webp",
        ".woff": "font/woff",
        ".woff2": "font/woff2",
        ".wasm": "application/wasm",
        ".txt": "text/plain; charset=utf-8",
    }

    def do_GET(self) -> None:
        """Answer the health probe, refuse hidden paths, else serve the file."""
        if self._url_path() == HEALTH_PATH:
            self._send_health()
        elif self._hidden():
            self.send_error(HTTPStatus.NOT_FOUND)
        else:
            super().do_GET()

    def do_HEAD(self) -> None:
        """Like GET without a body."""
        if self._hidden():
            self.send_error(HTTPStatus.NOT_FOUND)
        else:
            super().do_HEAD()

    def list_directory(self, path: str | os.PathLike[str]) -> io.BytesIO | None:
        """Never list folders (a site without index.html is a 404)."""
        self.send_error(HTTPStatus.NOT_FOUND)
        return None

    def end_headers(self) -> None:
        """Add ``Cache-Control: no-cache`` to every response."""
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log only failed requests (keep the log quiet)."""
        if str(code).isdigit() and int(code) >= 400:
            super().log_request(code, size)

    def log_message(self, format: str, *args: Any) -> None:
        """Write one line to stderr (the log file)."""
        sys.stderr.write(f"{self.log_date_time_string()} {self.address_string()} {format % args}\n")

    def _url_path(self) -> str:
        return unquote(urlsplit(self.path).path)

    def _hidden(self) -> bool:
        first = self._url_path().lstrip("/").split("/", 1)[0]
        return first.startswith(".")

    def _send_health(self) -> None:
        body = json.dumps({"service": SERVICE, "pid": os.getpid(), "root": self.directory}).encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


def make_server(root: Path, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Bind a static server for ``root`` on a loopback address (``port`` 0 = a free port).

    Raises:
        ConfigError: When ``host`` is not a loopback address.
        OSError: When the port cannot be bound.
    """
    check_loopback(host)
    handler = functools.partial(StaticHandler, directory=str(root.resolve()))
    server_class = _Server6 if ":" in host else _Server
    return server_class((host, port), handler)


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
    sys.stderr.write(f"pombolt static server pid {os.getpid()} serving {root} at {server_url(host, bound_port)}\n")
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
