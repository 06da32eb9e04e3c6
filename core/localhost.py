"""``*.localhost`` for Pom-Bolt's HTTP client: connected to loopback at connect time, whatever the resolver knows.

Local static sites each have their own origin, ``http://<site>.localhost:<port>/`` (RFC 6761: ``localhost`` and
its subdomains always mean loopback). Browsers resolve such names themselves; many system resolvers (containers
without nss-myhostname) do not. :func:`localhost_mounts` gives :func:`core.http.make_client` a transport for
``*.localhost`` URLs whose network backend connects them to :data:`LOOPBACK` without asking the resolver. Only
the socket's address changes: the request URL, and so its ``Host`` header, stay the site's.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Iterable

import httpcore
import httpx

__all__ = ["LOOPBACK", "is_localhost_name", "localhost_mounts"]

LOOPBACK = ("127.0.0.1", "::1")
"""Where ``*.localhost`` connects, tried in this order."""


def is_localhost_name(host: str) -> bool:
    """Whether ``host`` is a subdomain of ``localhost``."""
    return host.lower().rstrip(".").endswith(".localhost")


class _LoopbackNames(httpcore.NetworkBackend):
    """Connects ``*.localhost`` to :data:`LOOPBACK`; every other host goes to the system's backend unchanged."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Open a TCP connection (to loopback for ``*.localhost``, the first address that accepts)."""
        if not is_localhost_name(host):
            return self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        refused: httpcore.ConnectError | None = None
        for address in LOOPBACK:
            try:
                return self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                refused = exc
        assert refused is not None
        raise refused

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
    ) -> httpcore.NetworkStream:
        """Unchanged."""
        return self._inner.connect_unix_socket(path, timeout, socket_options)

    def sleep(self, seconds: float) -> None:
        """Unchanged."""
        self._inner.sleep(seconds)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()  # built once: building one costs tens of milliseconds


def localhost_mounts() -> dict[str, httpx.BaseTransport]:
    """httpx ``mounts`` routing ``*.localhost`` URLs through a transport that connects them to loopback."""
    transport = httpx.HTTPTransport(verify=_ssl_context())
    transport._pool._network_backend = _LoopbackNames()  # httpx has no public hook for the connect step
    return {"all://*.localhost": transport}
