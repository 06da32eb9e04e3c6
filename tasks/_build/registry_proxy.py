"""The allow-listing registry proxy: the only way out of a dependency-install sandbox (DESIGN §6).

:class:`RegistryProxy` runs in the worker on a Unix socket that is bound read-only into the sandbox
(:func:`registry_proxy` makes its folder); inside the sandbox :data:`FORWARDER_JS` listens on the sandbox's own
loopback and hands every connection to that socket. The proxy opens only the registry's host and port and
refuses registry addresses in internal ranges (:func:`internal_address`) unless the registry URL names one.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from core.errors import ConfigError

__all__ = ["FORWARDER_JS", "PROXY_SOCKET", "RegistryProxy", "internal_address", "registry_proxy"]

#: Where the registry proxy's socket appears inside the sandbox.
PROXY_SOCKET = "/run/pombolt/registry.sock"


#: Runs inside the sandbox: listens on the sandbox's own loopback, hands every connection to the registry
#: proxy's Unix socket, and runs the command with npm's proxy settings pointing at itself.
FORWARDER_JS = r"""'use strict';
const net = require('net');
const cp = require('child_process');
const os = require('os');
const [sock, cmd, ...args] = process.argv.slice(1);
const server = net.createServer((client) => {
  const upstream = net.connect(sock);
  const drop = () => { client.destroy(); upstream.destroy(); };
  client.on('error', drop);
  upstream.on('error', drop);
  client.pipe(upstream);
  upstream.pipe(client);
});
server.listen(0, '127.0.0.1', () => {
  const url = 'http://127.0.0.1:' + server.address().port;
  const env = Object.assign({}, process.env, {npm_config_proxy: url, npm_config_https_proxy: url});
  const child = cp.spawn(cmd, args, {stdio: 'inherit', env});
  child.on('error', (e) => { console.error('pombolt: cannot start ' + cmd + ': ' + e.message); process.exit(127); });
  child.on('exit', (code, sig) => process.exit(code === null ? 128 + (os.constants.signals[sig] || 0) : code));
});
"""


class RegistryProxy:
    """An allow-listing HTTP proxy on a Unix socket: the only way out of an install sandbox.

    It opens ``CONNECT host:port`` only for the registry's host and port (``https://`` registries), or
    forwards a plain request only to them (``http://`` registries), and answers 403 to anything else. The
    registry's addresses must not be internal (:func:`internal_address`) unless the registry URL itself names one or
    ``localhost`` (an operator's local registry). Refused targets are kept in :attr:`refused`, registry
    addresses that could not be reached in :attr:`unreachable`.
    """

    MAX_HEAD = 16 * 1024
    MAX_CONNECTIONS = 64

    def __init__(self, registry: str, folder: Path, *, owner: int | None = None) -> None:
        parts = urlsplit(registry)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"POMBOLT_BUILD_REGISTRY must be an http(s) URL, not {registry!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname.lower()
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.private_ok = self.host == "localhost" or not _is_public_literal(self.host)
        self.folder = folder
        self.socket_path = folder / Path(PROXY_SOCKET).name
        self.owner = owner
        self.refused: list[str] = []
        self.unreachable: list[str] = []
        self._server: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.MAX_CONNECTIONS)

    def __enter__(self) -> RegistryProxy:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(self.socket_path))
        if self.owner is not None:
            os.chown(self.socket_path, self.owner, self.owner)
        self.socket_path.chmod(0o600)
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, name="pombolt-registry-proxy", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            server.close()
        with self._lock:
            for conn in list(self._open):
                with contextlib.suppress(OSError):
                    conn.close()
            self._open.clear()
        with contextlib.suppress(OSError):
            self.socket_path.unlink()

    def _accept(self) -> None:
        while self._server is not None:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if not self._slots.acquire(blocking=False):
                client.close()
                continue
            self._track(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._open.add(conn)

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            client.settimeout(30)
            head = self._read_head(client)
            if head is None:
                return
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            method, _, rest = line.partition(" ")
            target = rest.rsplit(" ", 1)[0]
            host, port, plain = self._target(method, target)
            if not self._allowed(host, port, plain):
                self.refused.append(f"{host}:{port}" if host else target[:200])
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                return
            try:
                upstream = self._connect(host, port)
            except OSError as exc:
                self.unreachable.append(f"{host}:{port} ({exc})")
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                return
            self._track(upstream)
            if plain:
                upstream.sendall(head)
            else:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            client.settimeout(None)
            upstream.settimeout(None)
            pump = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
            pump.start()
            _pump(client, upstream)
            pump.join()
        except OSError:
            pass
        finally:
            for conn in (client, upstream):
                if conn is not None:
                    with contextlib.suppress(OSError):
                        conn.close()
                    with self._lock:
                        self._open.discard(conn)
            self._slots.release()

    def _read_head(self, client: socket.socket) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = client.recv(4096)
            if not chunk:
                return None
            data += chunk
            if len(data) > self.MAX_HEAD:
                return None
        return data

    def _target(self, method: str, target: str) -> tuple[str, int, bool]:
        """(host, port, plain) of a request: ``CONNECT host:port`` or an absolute ``http://`` URL."""
        if method.upper() == "CONNECT":
            host, _, digits = target.rpartition(":")
            return host.strip("[]").lower(), int(digits) if digits.isdigit() else -1, False
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            return "", -1, True
        try:
            number = parts.port or 80
        except ValueError:
            number = -1
        return parts.hostname.lower(), number, True

    def _allowed(self, host: str, port: int, plain: bool) -> bool:
        if (host, port) != (self.host, self.port):
            return False
        return plain == (self.scheme == "http")

    def _connect(self, host: str, port: int) -> socket.socket:
        """Connect to the registry at an address that passes the range check (no DNS rebinding inward)."""
        error: OSError = OSError(f"{host} has no usable address")
        for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
            ip = ipaddress.ip_address(address[0])
            if not self.private_ok and internal_address(ip):
                error = OSError(f"{host} resolved to {ip}, a loopback/private/link-local address")
                continue
            sock = socket.socket(family, kind, proto)
            sock.settimeout(30)
            try:
                sock.connect(address)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            return sock
        raise error


_INTERNAL = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT, often a provider's internal network
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128",
        "::1/128",
        "fc00::/7",  # unique local, AWS metadata fd00:ec2::254
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)


def internal_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether ``ip`` reaches the machine itself or a private network: loopback, RFC 1918, link-local and
    metadata, CGNAT, multicast, reserved — also inside IPv4-mapped, NAT64 and 6to4 IPv6 addresses."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in ipaddress.ip_network("64:ff9b::/96"):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return internal_address(embedded)
    return any(ip.version == net.version and ip in net for net in _INTERNAL)


def _is_public_literal(host: str) -> bool:
    """True unless ``host`` is an IP literal of an internal range (a name counts as public)."""
    try:
        return not internal_address(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return True


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while chunk := src.recv(65536):
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def registry_proxy(registry: str, parent: Path, *, owner: int | None) -> Iterator[tuple[RegistryProxy, Path]]:
    """A :class:`RegistryProxy` in a fresh folder of ``parent`` (bound read-only into the sandbox); removed after."""
    folder = Path(tempfile.mkdtemp(prefix="pombolt-proxy-", dir=parent))
    try:
        folder.chmod(0o711)  # the build user reaches the socket (its own), cannot list or write the folder
        with RegistryProxy(registry, folder, owner=owner) as proxy:
            yield proxy, folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
