"""Base for the fake HTTP services that stand in for GitHub, Netlify, Cloudflare, Vercel and the LLM.

A fake is a real HTTP/1.1 server on a free 127.0.0.1 port, run by the stdlib in a daemon thread, so
the code under test talks to it over real sockets. It is plain Python (no pytest), so benches can
reuse it.

Example:
    class FakeThing(FakeService):
        @route("GET", r"/things/(?P<name>[^/]+)")
        def get_thing(self, request: Request) -> Response:
            return self.require_bearer(request) or Response(200, {"name": request.params["name"]})

    with FakeThing(tokens={"t0k"}) as svc:
        httpx.get(f"{svc.url}/things/a", headers={"Authorization": "Bearer t0k"})
        assert svc.count("GET", r"/things/.+") == 1

Order of work per request: read it, apply the fault plan (latency, then maybe a fault), then a
scripted reply if one matches, else the first matching route, else 404. The request is written to the
log before the response is sent, so a test sees the entry as soon as its client call returns.
"""

from __future__ import annotations

import http.server
import json
import random
import re
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = [
    "FakeService",
    "FaultPlan",
    "Headers",
    "LoggedRequest",
    "Request",
    "Response",
    "Route",
    "route",
]

Handler = Callable[["Request"], "Response"]

_MAX_CHUNKS = 100_000
_MAX_LINE = 65_536
_ANY = "*"


def _matches(method: str | None, path_re: str | re.Pattern[str] | None, req_method: str, path: str) -> bool:
    """Tell whether a request matches a method filter (None or "*" = any) and a full-match path regex."""
    if method not in (None, _ANY) and method.upper() != req_method:
        return False
    return path_re is None or re.fullmatch(path_re, path) is not None


class Headers(Mapping[str, str]):
    """Read-only, case-insensitive HTTP headers that keep the original spelling of each name.

    Repeated headers are joined with ", ".
    """

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        for name, value in items:
            key = name.lower()
            if key in self._items:
                name, value = self._items[key][0], f"{self._items[key][1]}, {value}"
            self._items[key] = (name, value)

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


@dataclass(frozen=True)
class Request:
    """An HTTP request as a handler sees it.

    Attributes:
        method: Upper-case method, e.g. "POST".
        path: Percent-decoded path without the query string; routes match against it.
        query: Query parameters, last value wins.
        headers: Case-insensitive request headers.
        body: Raw body bytes (chunked bodies already decoded).
        params: Named groups of the route regex that matched.
        raw_path: The request target exactly as sent (path and query, still encoded).
        query_all: Query parameters with every value.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: Headers
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)
    raw_path: str = ""
    query_all: dict[str, list[str]] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8")

    def json(self) -> Any:
        """Parse the body as JSON.

        Returns:
            The parsed value, or None when the body is empty.

        Raises:
            ValueError: The body is not valid JSON (the service turns this into a 500).
        """
        return json.loads(self.body) if self.body else None


@dataclass
class Response:
    """What a handler, a scripted reply or a fault sends back.

    Attributes:
        status: HTTP status code.
        body: None (empty), bytes (sent as is), str (text/plain) or anything else (sent as JSON).
        headers: Extra response headers; Content-Type is filled in from the body type when absent.
            Content-Length is always computed.
    """

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> tuple[bytes, dict[str, str]]:
        """Serialise the body.

        Returns:
            The body bytes and the headers to send (without Content-Length).
        """
        headers = {k: v for k, v in self.headers.items() if k.lower() != "content-length"}
        if self.body is None:
            data, ctype = b"", None
        elif isinstance(self.body, bytes | bytearray):
            data, ctype = bytes(self.body), "application/octet-stream"
        elif isinstance(self.body, str):
            data, ctype = self.body.encode("utf-8"), "text/plain; charset=utf-8"
        else:
            data, ctype = json.dumps(self.body).encode("utf-8"), "application/json"
        if ctype and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = ctype
        return data, headers


@dataclass
class LoggedRequest:
    """One entry of a service's request log.

    Attributes:
        method: Request method.
        path: Percent-decoded request path.
        query: Query parameters, last value wins.
        headers: Request headers (case-insensitive).
        body: Raw request body.
        timestamp: time.time() when the request was read.
        status: Response status; None when the connection was dropped without a response.
        response_headers: Headers the service sent (without Content-Length).
        response_body: Body the service meant to send (the full body, even when truncated).
        faulted: The injected fault: a status such as "503", "drop" or "truncate"; None if none.
        scripted: True when a scripted reply answered.
        error: Traceback of a handler exception (the client got a 500), else None.
        latency: Seconds of latency added by the fault plan.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: Headers
    body: bytes
    timestamp: float
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""
    faulted: str | None = None
    scripted: bool = False
    error: str | None = None
    latency: float = 0.0

    def json(self) -> Any:
        """Parse the request body as JSON (None when empty)."""
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class Route:
    """A method plus a full-match path regex, bound to a handler."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """Return the named groups when the route matches, else None."""
        if self.method not in (_ANY, method):
            return None
        found = self.pattern.fullmatch(path)
        return None if found is None else {k: v for k, v in found.groupdict().items() if v is not None}


def route(method: str, pattern: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Mark a FakeService method as the handler of `method` + `pattern` (decorators may be stacked).

    Args:
        method: HTTP method, or "*" for any.
        pattern: Regex that must match the whole decoded path; named groups go to `request.params`.

    Returns:
        A decorator that returns the function unchanged.
    """

    def decorate(func: Callable[..., Response]) -> Callable[..., Response]:
        func.__dict__.setdefault("_fake_routes", []).append((method.upper(), pattern))
        return func

    return decorate


@dataclass
class FaultPlan:
    """A seeded plan of injected faults; the same seed and traffic give the same faults.

    For every request it covers, the plan draws one roll for the fault and one for the latency (always
    both, so the sequence stays aligned). Requests outside `only` draw nothing.

    Faults: a status in `rates` (JSON error body, Retry-After on 429/503 when `retry_after` is set);
    "drop" closes the connection without a response, before the handler runs; "truncate" runs the
    handler, then sends a Content-Length larger than the half body it sends, and closes.

    Attributes:
        seed: Seed of the plan's own random.Random.
        rates: Probability of each error status, e.g. {503: 0.3, 429: 0.1}.
        retry_after: Seconds for the Retry-After header of 429/503 faults; None sends no header.
        latency: (min, max) seconds of latency added to every covered request.
        drop_rate: Probability of a dropped connection.
        truncate_rate: Probability of a truncated response body.
        only: A (method, path regex) pair or a list of them; when given, only matching requests are
            covered. Method may be "*"; the regex must match the whole path.
        max_faults: Stop injecting faults (latency continues) after this many.
        injected: Number of faults injected so far.
    """

    seed: int = 0
    rates: Mapping[int, float] = field(default_factory=dict)
    retry_after: float | None = None
    latency: tuple[float, float] = (0.0, 0.0)
    drop_rate: float = 0.0
    truncate_rate: float = 0.0
    only: tuple[str, str] | Sequence[tuple[str, str]] | None = None
    max_faults: int | None = None
    injected: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        only: Any = self.only or []
        if isinstance(only, tuple) and len(only) == 2 and all(isinstance(x, str) for x in only):
            only = [only]  # a single (method, path) pair
        self._only = [(str(m), str(p)) for m, p in only]
        self._choices = [(str(code), float(rate)) for code, rate in sorted(self.rates.items())]
        self._choices += [("drop", float(self.drop_rate)), ("truncate", float(self.truncate_rate))]
        if any(not 0.0 <= rate <= 1.0 for _, rate in self._choices):
            raise ValueError("fault rates must be between 0 and 1")
        if sum(rate for _, rate in self._choices) > 1.0 + 1e-9:
            raise ValueError("fault rates add up to more than 1")
        low, high = self.latency
        if not 0.0 <= low <= high:
            raise ValueError("latency must be (min, max) with 0 <= min <= max")
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def covers(self, method: str, path: str) -> bool:
        """Tell whether the plan applies to a request."""
        return not self._only or any(_matches(m, p, method, path) for m, p in self._only)

    def decide(self, method: str, path: str) -> tuple[str | None, float]:
        """Draw the fate of one request.

        Args:
            method: Request method.
            path: Request path.

        Returns:
            (fault, latency): fault is None, a status such as "503", "drop" or "truncate";
            latency is in seconds.
        """
        if not self.covers(method, path):
            return None, 0.0
        with self._lock:
            roll = self._rng.random()
            delay = self._rng.uniform(*self.latency)
            if self.max_faults is not None and self.injected >= self.max_faults:
                return None, delay
            edge = 0.0
            for fault, rate in self._choices:
                edge += rate
                if roll < edge:
                    self.injected += 1
                    return fault, delay
            return None, delay


@dataclass
class _Script:
    method: str
    path_re: str
    response: Response
    remaining: int


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], service: FakeService) -> None:
        self.service = service
        super().__init__(address, _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; avoid 40 ms stalls
    timeout = 30  # idle keep-alive connections end after this many seconds
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.service._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.service._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""

    def _dispatch(self) -> None:
        self.server.service._serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        for _ in range(_MAX_CHUNKS):
            size = int(self.rfile.readline(_MAX_LINE).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                for _ in range(100):  # trailers end with a blank line
                    if self.rfile.readline(_MAX_LINE) in (b"\r\n", b"\n", b""):
                        break
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(_MAX_LINE)
        raise ValueError("too many chunks")

    def send(self, status: int, headers: Mapping[str, str], data: bytes, truncate: bool = False) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(max(len(data), 1) if truncate else len(data)))
        if truncate:
            self.send_header("Connection", "close")
        try:
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data[: len(data) // 2] if truncate else data)
        except OSError:  # the client went away; nothing left to tell it
            self.close_connection = True
            return
        if truncate:
            self.drop()

    def drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class FakeService:
    """A fake HTTP API on 127.0.0.1 with routes, a request log, scripted replies and seeded faults.

    Subclasses declare handlers with `@route(...)`; handlers run while holding `self.lock` (an RLock),
    so state kept on the instance is safe without further locking. Use `self.lock` yourself when
    reading that state from test code.

    Attributes:
        name: Short service name, used in messages.
        auth_schemes: Authorization schemes that `require_bearer` accepts (case-insensitive).
        lock: Re-entrant lock held around every handler call.
        tokens: Accepted tokens; empty means any non-empty token is accepted.
    """

    name = "fake"
    auth_schemes: tuple[str, ...] = ("Bearer",)

    def __init__(self, *, tokens: Iterable[str] = (), host: str = "127.0.0.1", port: int = 0) -> None:
        """Create the service (not started).

        Args:
            tokens: Bearer tokens that `require_bearer` accepts.
            host: Address to listen on.
            port: Port to listen on; 0 picks a free one.
        """
        self.lock = threading.RLock()
        self.tokens: set[str] = set(tokens)
        self._address = (host, port)
        self._meta = threading.Lock()
        self._routes = self._collect_routes()
        self._scripts: list[_Script] = []
        self._log: list[LoggedRequest] = []
        self._faults: FaultPlan | None = None
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ----- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind the port and serve in a daemon thread.

        Returns:
            The service itself.

        Raises:
            RuntimeError: Already started.
        """
        if self._server is not None:
            raise RuntimeError(f"{self.name} is already running")
        self._server = _Server(self._address, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=self.name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and every open connection. Safe to call twice."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._meta:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port.

        Raises:
            RuntimeError: Not started.
        """
        if self._server is None:
            raise RuntimeError(f"{self.name} is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. "http://127.0.0.1:40123" (no trailing slash)."""
        return f"http://{self._address[0]}:{self.port}"

    # ----- routes ----------------------------------------------------------------------------------

    def add_route(self, method: str, pattern: str, handler: Handler) -> None:
        """Register a handler at run time, after the class routes (first match wins).

        Args:
            method: HTTP method, or "*" for any.
            pattern: Regex that must match the whole decoded path.
            handler: Callable taking a Request and returning a Response; runs under `self.lock`.
        """
        with self._meta:
            self._routes.append(Route(method.upper(), re.compile(pattern), handler))

    def _collect_routes(self) -> list[Route]:
        specs: dict[str, list[tuple[str, str]]] = {}
        for cls in reversed(type(self).__mro__):
            for attr_name, attr in vars(cls).items():
                if getattr(attr, "_fake_routes", None):
                    specs[attr_name] = attr._fake_routes
        return [
            Route(method, re.compile(pattern), getattr(self, attr_name))
            for attr_name, pairs in specs.items()
            for method, pattern in pairs
        ]

    # ----- helpers for handlers --------------------------------------------------------------------

    def error_body(self, status: int, message: str) -> Any:
        """JSON body of the errors this class produces (404, 500, 401, faults). Override per provider.

        Args:
            status: HTTP status.
            message: Human-readable message.

        Returns:
            A JSON-serialisable value.
        """
        return {"message": message, "status": status}

    def error(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
        """Build an error Response with `error_body`."""
        return Response(status, self.error_body(status, message), dict(headers or {}))

    def require_bearer(self, request: Request) -> Response | None:
        """Check the Authorization header against `auth_schemes` and `tokens`.

        Args:
            request: The request to check.

        Returns:
            None when the credentials are accepted, else a 401 Response to return.
        """
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        schemes = {s.lower() for s in self.auth_schemes}
        if scheme.lower() in schemes and token and (not self.tokens or token in self.tokens):
            return None
        return self.error(401, "Bad credentials" if header else "Requires authentication")

    # ----- scripted replies ------------------------------------------------------------------------

    def script(self, method: str, path_re: str, response: Response, times: int = 1) -> None:
        """Queue a reply that answers the next `times` matching requests instead of the handler.

        Scripts are consumed in FIFO order among those that match. A request hit by a fault does not
        consume a script.

        Args:
            method: HTTP method, or "*" for any.
            path_re: Regex that must match the whole decoded path.
            response: The reply to send.
            times: How many requests it answers.
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        re.compile(path_re)
        with self._meta:
            self._scripts.append(_Script(method.upper(), path_re, response, times))

    def clear_scripts(self) -> None:
        """Drop every queued scripted reply."""
        with self._meta:
            self._scripts.clear()

    def pending_scripts(self) -> int:
        """Number of scripted replies still queued (counting `times`)."""
        with self._meta:
            return sum(s.remaining for s in self._scripts)

    def _take_script(self, method: str, path: str) -> Response | None:
        with self._meta:
            for entry in self._scripts:
                if _matches(entry.method, entry.path_re, method, path):
                    entry.remaining -= 1
                    if entry.remaining == 0:
                        self._scripts.remove(entry)
                    return entry.response
        return None

    # ----- faults ----------------------------------------------------------------------------------

    def set_fault_plan(self, plan: FaultPlan) -> None:
        """Apply `plan` to the following requests (replaces any previous plan)."""
        with self._meta:
            self._faults = plan

    def clear_faults(self) -> None:
        """Stop injecting faults and latency."""
        with self._meta:
            self._faults = None

    # ----- request log -----------------------------------------------------------------------------

    def requests(self, method: str | None = None, path_re: str | None = None) -> list[LoggedRequest]:
        """Logged requests in arrival order, optionally filtered.

        Args:
            method: Keep only this method (None or "*" = any).
            path_re: Keep only paths this regex matches in full.

        Returns:
            A new list of log entries.
        """
        with self._meta:
            return [e for e in self._log if _matches(method, path_re, e.method, e.path)]

    def count(self, method: str | None = None, path_re: str | None = None) -> int:
        """Number of logged requests matching the filters of `requests`."""
        return len(self.requests(method, path_re))

    def last(self, method: str | None = None, path_re: str | None = None) -> LoggedRequest:
        """The most recent logged request matching the filters of `requests`.

        Raises:
            LookupError: No request matches.
        """
        found = self.requests(method, path_re)
        if not found:
            raise LookupError(f"{self.name}: no request matches {method} {path_re}")
        return found[-1]

    def clear_log(self) -> None:
        """Forget every logged request."""
        with self._meta:
            self._log.clear()

    # ----- internals -------------------------------------------------------------------------------

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._meta:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _serve(self, handler: _Handler) -> None:
        target = urlsplit(handler.path)
        query_all = parse_qs(target.query, keep_blank_values=True)
        headers = Headers(handler.headers.items())
        entry = LoggedRequest(
            method=handler.command,
            path=unquote(target.path),
            query={k: v[-1] for k, v in query_all.items()},
            headers=headers,
            body=b"",
            timestamp=time.time(),
        )
        try:
            entry.body = handler.read_body()
        except (ValueError, OSError) as exc:
            handler.close_connection = True
            self._finish(handler, entry, self.error(400, f"unreadable request body: {exc}"))
            return
        request = Request(
            method=entry.method,
            path=entry.path,
            query=entry.query,
            headers=headers,
            body=entry.body,
            raw_path=handler.path,
            query_all=query_all,
        )
        with self._meta:
            plan = self._faults
        fault, entry.latency = plan.decide(request.method, request.path) if plan else (None, 0.0)
        entry.faulted = fault
        if entry.latency:
            time.sleep(entry.latency)
        if fault == "drop":
            self._record(entry)
            handler.drop()
            return
        if fault is not None and fault.isdigit():
            status = int(fault)
            extra = {}
            if plan is not None and plan.retry_after is not None and status in (429, 503):
                extra["Retry-After"] = f"{plan.retry_after:g}"
            response = self.error(status, f"injected fault {status}", extra)
        else:
            response = self._respond(request, entry)
        self._finish(handler, entry, response, truncate=fault == "truncate")

    def _respond(self, request: Request, entry: LoggedRequest) -> Response:
        scripted = self._take_script(request.method, request.path)
        if scripted is not None:
            entry.scripted = True
            return scripted
        with self._meta:
            routes = list(self._routes)
        for candidate in routes:
            params = candidate.match(request.method, request.path)
            if params is None:
                continue
            try:
                with self.lock:
                    response = candidate.handler(replace(request, params=params))
                if not isinstance(response, Response):
                    raise TypeError(f"handler returned {type(response).__name__}, not Response")
                return response
            except Exception as exc:
                entry.error = traceback.format_exc()
                return self.error(500, f"{self.name} handler failed: {type(exc).__name__}: {exc}"[:300])
        return self.error(404, f"{self.name}: no route for {request.method} {request.path}")

    def _finish(
        self, handler: _Handler, entry: LoggedRequest, response: Response, truncate: bool = False
    ) -> None:
        data, headers = response.encode()
        entry.status, entry.response_headers, entry.response_body = response.status, headers, data
        self._record(entry)
        handler.send(response.status, headers, data, truncate=truncate)

    def _record(self, entry: LoggedRequest) -> None:
        with self._meta:
            self._log.append(entry)
