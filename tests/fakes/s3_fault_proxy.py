"""A fault-injecting HTTP proxy in front of moto's S3 server, on the fakes base.

moto answers S3 like S3 does but never fails. :class:`S3FaultProxy` is a
:class:`~tests.fakes.base.FakeService` whose one route forwards every request, as sent, to the
upstream (moto) and returns its answer; the base's seeded :class:`~tests.fakes.base.FaultPlan` then
injects S3's transient failures in front of it: ``503 SlowDown`` with ``Retry-After`` (S3's XML error
body), ``500 InternalError``, dropped connections (before moto sees the request) and added latency.
Point an S3 client's ``endpoint_url`` at :attr:`S3FaultProxy.url`; the request log shows every
attempt, faulted or forwarded.

:func:`moto_s3` starts moto's threaded server on a free 127.0.0.1 port and stops it afterwards.

Example:
    with moto_s3() as upstream, S3FaultProxy(upstream) as proxy:
        proxy.set_fault_plan(FaultPlan(seed=1, rates={503: 0.2}, retry_after=1, drop_rate=0.1))
        boto3.client("s3", endpoint_url=proxy.url, ...).create_bucket(Bucket="b")
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from xml.sax.saxutils import escape

import httpx

from tests.fakes.base import FakeService, Request, Response, route

__all__ = ["S3FaultProxy", "moto_s3"]

#: Headers that belong to one connection, not to the message; never forwarded either way.
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "expect", "host", "content-length"}
)
_S3_CODES = {500: "InternalError", 502: "BadGateway", 503: "SlowDown", 504: "GatewayTimeout"}
_S3_MESSAGES = {503: "Please reduce your request rate.", 500: "We encountered an internal error. Please try again."}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"moto's S3 server did not open 127.0.0.1:{port} within {timeout:g} s")


@contextmanager
def moto_s3() -> Iterator[str]:
    """Run moto's S3 server on a free 127.0.0.1 port; yield its URL; stop it on exit."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        _wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


class S3FaultProxy(FakeService):
    """Forwards every request to an S3 endpoint (moto) unless the fault plan fails it first."""

    name = "s3-fault-proxy"

    def __init__(self, upstream: str, *, timeout: float = 30.0) -> None:
        """Create the proxy (not started).

        Args:
            upstream: Base URL of the S3 endpoint, e.g. moto's ``http://127.0.0.1:PORT``.
            timeout: Seconds one forwarded request may take.
        """
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self._client = httpx.Client(base_url=self.upstream, timeout=timeout, follow_redirects=False)

    def stop(self) -> None:
        """Stop serving and close the upstream connections."""
        super().stop()
        self._client.close()

    def error_body(self, status: int, message: str) -> Any:
        """S3's XML error document (SlowDown for 503, InternalError for 500, ...)."""
        code = _S3_CODES.get(status, "ServiceUnavailable" if status >= 500 else "InvalidRequest")
        text = _S3_MESSAGES.get(status, message)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{escape(text)}</Message>"
            f"<RequestId>fault-{status}</RequestId></Error>"
        ).encode()

    def error(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
        """An S3 error response (XML body, ``application/xml``)."""
        return Response(
            status, self.error_body(status, message), {"Content-Type": "application/xml", **(headers or {})}
        )

    @route("*", r"/.*")
    def forward(self, request: Request) -> Response:
        """Send the request to the upstream unchanged and return its answer (status, headers, bytes)."""
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        try:
            with self._client.stream(
                request.method, request.raw_path or request.path, content=request.body, headers=headers
            ) as upstream:
                body = b"".join(upstream.iter_raw())
        except httpx.HTTPError as exc:
            return self.error(502, f"upstream {self.upstream} failed: {type(exc).__name__}")
        kept = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
        return Response(upstream.status_code, body, kept)
