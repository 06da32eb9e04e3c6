"""Tests for core.http against a real threaded HTTP server on 127.0.0.1."""

from __future__ import annotations

import email.utils
import json
import logging
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr

from core.errors import AuthFailed, ProviderError, ProviderRejected, ProviderUnavailable, RateLimited
from core.http import make_client
from core.redaction import get_request_id, set_request_id
from core.settings import Timeouts

TOKEN = "ghp_TestToken0123456789abcdefABCDEF0123"
# Matches no token pattern: only the client's secret registry can mask it.
ODD_TOKEN = "zq.UNUSUAL.shape.7731.secret"
FAST = Timeouts(http_connect=2, http_read=2, http_total_retry=5, http_attempts=3, http_max_wait=0.05)
_TEST_LOG = logging.getLogger("pombolt.tests.http")  # exists before make_client installs redaction


# --- a tiny scripted HTTP server -----------------------------------------------------------------
@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class FakeServer:
    """Answers each request with the next scripted Reply (or ``default``) and records what it saw."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.default = Reply(200, {"ok": True})
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                with fake._lock:
                    fake.seen.append(
                        Seen(
                            self.command,
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            time.monotonic(),
                        )
                    )
                    reply = fake.replies.popleft() if fake.replies else fake.default
                time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    return
                data = (
                    reply.body
                    if isinstance(reply.body, bytes)
                    else (b"" if reply.body is None else json.dumps(reply.body).encode())
                )
                self.send_response(reply.status)
                if reply.body is not None and not isinstance(reply.body, bytes):
                    self.send_header("Content-Type", "application/json")
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def add(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer()
    yield fake
    fake.close()


def client_for(server: FakeServer, timeouts: Timeouts = FAST, **kwargs: Any) -> Any:
    kwargs.setdefault("token", SecretStr(TOKEN))
    return make_client("github", server.url, timeouts=timeouts, block_name="gh-main", **kwargs)


# --- headers -------------------------------------------------------------------------------------
def test_sends_authorization_user_agent_and_request_id(server: FakeServer) -> None:
    with client_for(server, request_id="run-42", headers={"Accept": "application/json"}) as client:
        assert client.json("GET", "/user") == {"ok": True}
    seen = server.seen[0].headers
    assert seen["authorization"] == f"Bearer {TOKEN}"
    assert seen["x-request-id"] == "run-42"
    assert seen["user-agent"].startswith("pombolt/")
    assert seen["accept"] == "application/json"


def test_request_id_falls_back_to_context_and_scheme_is_configurable(server: FakeServer) -> None:
    reset = set_request_id("flow-7")
    try:
        assert get_request_id() == "flow-7"
        with client_for(server, auth_scheme="token") as client:
            client.get("/a")
    finally:
        set_request_id(None)
        del reset
    assert server.seen[0].headers["x-request-id"] == "flow-7"
    assert server.seen[0].headers["authorization"] == f"token {TOKEN}"


def test_no_token_no_authorization_and_token_not_stored_in_plain(server: FakeServer) -> None:
    with client_for(server, token=None) as client:
        client.get("/public")
    assert "authorization" not in server.seen[0].headers
    with client_for(server) as client:
        assert TOKEN not in repr(vars(client))
        assert "authorization" not in {k.lower() for k in client._client.headers}


# --- retries -------------------------------------------------------------------------------------
def test_503_twice_then_success(server: FakeServer) -> None:
    server.add(Reply(503), Reply(503), Reply(200, {"id": 1}))
    with client_for(server) as client:
        assert client.get("/repos/x").json() == {"id": 1}
        assert len(server.seen) == 3
        assert client.stats.requests == 3
        assert client.stats.retries == 2
        assert client.stats.writes == 0


def test_429_retry_after_is_honoured(server: FakeServer) -> None:
    server.add(Reply(429, {"message": "slow down"}, {"Retry-After": "1"}))
    slow = FAST.model_copy(update={"http_max_wait": 3.0})
    with client_for(server, timeouts=slow) as client:
        assert client.get("/a").status_code == 200
    gap = server.seen[1].at - server.seen[0].at
    assert 0.9 <= gap < 2.0


def test_retry_after_http_date_and_ratelimit_reset(server: FakeServer) -> None:
    soon = email.utils.formatdate(time.time() + 1, usegmt=True)
    reset = str(int(time.time()) + 1)
    server.add(
        Reply(503, headers={"Retry-After": soon}),
        Reply(
            403,
            {"message": "API rate limit exceeded"},
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset},
        ),
    )
    slow = FAST.model_copy(update={"http_max_wait": 3.0})
    with client_for(server, timeouts=slow) as client:
        assert client.get("/a").status_code == 200
    assert len(server.seen) == 3
    assert server.seen[2].at - server.seen[0].at < 3.5


@pytest.mark.parametrize(
    "reply",
    [
        Reply(403, {"message": "You have exceeded a secondary rate limit."}, {"Retry-After": "0"}),
        Reply(403, {"message": "You have exceeded a secondary rate limit. Please wait."}),
        Reply(403, {"message": "API rate limit exceeded"}, {"x-ratelimit-remaining": "0"}),
    ],
    ids=["retry-after", "body", "remaining-0"],
)
def test_github_rate_limits_are_retried(server: FakeServer, reply: Reply) -> None:
    server.add(reply)
    with client_for(server) as client:
        assert client.post("/repos", json={"name": "x"}).status_code == 200
        assert client.stats.retries == 1
        assert client.stats.writes == 2
    assert len(server.seen) == 2


def test_rate_limit_exhausted_is_rate_limited(server: FakeServer) -> None:
    server.default = Reply(429, {"message": "slow down"})
    with client_for(server) as client, pytest.raises(RateLimited) as info:
        client.get("/a")
    assert len(server.seen) == 3
    assert info.value.retryable and info.value.status == 429


def test_retry_after_beyond_total_budget_gives_up_at_once(server: FakeServer) -> None:
    server.default = Reply(429, headers={"Retry-After": "30"})
    tight = FAST.model_copy(update={"http_total_retry": 1.0, "http_max_wait": 60.0})
    started = time.monotonic()
    with client_for(server, timeouts=tight) as client, pytest.raises(RateLimited) as info:
        client.get("/a")
    assert time.monotonic() - started < 1.0
    assert len(server.seen) == 1
    assert "wait 30 s" in info.value.message


def test_5xx_exhausted_is_provider_unavailable(server: FakeServer) -> None:
    server.default = Reply(502, b"<html>bad gateway</html>")
    with client_for(server) as client, pytest.raises(ProviderUnavailable) as info:
        client.get("/a")
    assert len(server.seen) == FAST.http_attempts
    assert info.value.retryable is True
    assert info.value.status == 502
    assert "GET /a" in info.value.message


def test_dropped_connection_then_success(server: FakeServer) -> None:
    server.add(Reply(drop=True))
    with client_for(server) as client:
        assert client.get("/a").json() == {"ok": True}
        assert client.stats.retries == 1
    assert len(server.seen) == 2


def test_read_timeout_then_success(server: FakeServer) -> None:
    server.add(Reply(delay=0.6))
    quick = FAST.model_copy(update={"http_read": 0.2})
    with client_for(server, timeouts=quick) as client:
        assert client.get("/a").status_code == 200
    assert len(server.seen) == 2


def test_connection_refused_is_retried_then_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client("netlify", f"http://127.0.0.1:{port}", timeouts=FAST)
    with client, pytest.raises(ProviderUnavailable) as info:
        client.get("/sites")
    assert client.stats.requests == FAST.http_attempts
    assert info.value.retryable is True
    assert "ConnectError" in info.value.message
    assert isinstance(info.value.__cause__, Exception)


def test_post_not_retried_on_500_unless_idempotent(server: FakeServer) -> None:
    server.default = Reply(500, {"message": "boom"})
    with client_for(server) as client, pytest.raises(ProviderUnavailable):
        client.post("/deploys", json={})
    assert len(server.seen) == 1
    server.default = Reply(200)
    server.add(Reply(500))
    with client_for(server) as client:
        assert client.post("/deploys", json={}, idempotent=True).status_code == 200
    assert len(server.seen) == 3


def test_get_retried_on_500(server: FakeServer) -> None:
    server.add(Reply(500))
    with client_for(server) as client:
        assert client.get("/a").status_code == 200
    assert len(server.seen) == 2


def test_post_dropped_connection_not_retried(server: FakeServer) -> None:
    server.add(Reply(drop=True))
    with client_for(server) as client, pytest.raises(ProviderUnavailable) as info:
        client.post("/repos", json={"name": "x"})
    assert len(server.seen) == 1
    assert info.value.retryable is True


# --- error translation ---------------------------------------------------------------------------
def test_401_is_auth_failed_without_retry(server: FakeServer) -> None:
    server.add(Reply(401, {"message": "Bad credentials"}))
    with client_for(server) as client, pytest.raises(AuthFailed) as info:
        client.get("/user")
    assert len(server.seen) == 1
    message = str(info.value)
    assert message.startswith("github: rejected the token (HTTP 401)")
    assert "gh-main" in message
    assert TOKEN not in message and "Bearer" not in message
    assert info.value.retryable is False


def test_403_without_rate_limit_is_permission(server: FakeServer) -> None:
    server.add(Reply(403, {"message": "Resource not accessible by integration"}))
    with client_for(server) as client, pytest.raises(AuthFailed) as info:
        client.put("/repos/o/r/contents/a")
    assert len(server.seen) == 1
    assert "lacks permission" in info.value.message
    assert "Resource not accessible by integration" in info.value.message


def test_404_rejected_unless_expected(server: FakeServer) -> None:
    server.default = Reply(404, {"message": "Not Found"})
    with client_for(server) as client:
        with pytest.raises(ProviderRejected) as info:
            client.get("/repos/o/missing")
        assert info.value.status == 404 and not info.value.retryable
        assert "Not Found" in info.value.message
        assert client.get("/repos/o/missing", expected=(404, 409, 422)).status_code == 404
    assert len(server.seen) == 2


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"message": "Validation Failed", "errors": [{"message": "name already exists"}]},
            "Validation Failed: name already exists",
        ),
        ({"error": {"code": "bad", "message": "project name taken"}}, "project name taken"),
        ({"errors": [{"code": 1000, "message": "invalid zone"}]}, "invalid zone"),
        ({"error": "invalid_request"}, "invalid_request"),
        (b"plain text failure", "plain text failure"),
        ({"message": "x" * 1000}, "x" * 297 + "..."),
    ],
)
def test_provider_message_extraction(server: FakeServer, body: Any, expected: str) -> None:
    server.add(Reply(422, body))
    with client_for(server) as client, pytest.raises(ProviderRejected) as info:
        client.post("/x")
    assert info.value.message.endswith(expected)


def test_json_helper(server: FakeServer) -> None:
    server.add(Reply(204), Reply(200, b"<html>not json</html>", {"Content-Type": "text/html"}))
    with client_for(server) as client:
        assert client.json("DELETE", "/a") is None
        with pytest.raises(ProviderError, match="not JSON"):
            client.json("GET", "/b")


# --- tokens in logs and errors ------------------------------------------------------------------
def test_token_never_reaches_logs_or_errors(server: FakeServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server.add(
        Reply(503),
        Reply(200),
        Reply(401, {"message": f"Bad credentials {ODD_TOKEN}"}),
        Reply(404, {"message": f"nothing for Authorization: Bearer {ODD_TOKEN}"}),
    )
    errors: list[str] = []
    with client_for(server, token=SecretStr(ODD_TOKEN)) as client:
        client.get("/a?access_token=" + ODD_TOKEN)
        for path in ("/b", "/c"):
            with pytest.raises(ProviderError) as info:
                client.get(path)
            errors.append(str(info.value))
        _TEST_LOG.debug("about to leak %s", ODD_TOKEN)
        logging.getLogger("httpx").debug("Authorization: Bearer %s", ODD_TOKEN)
        logging.getLogger("httpcore.http11").debug("headers=%r", {"authorization": ODD_TOKEN})
    assert server.seen[0].headers["authorization"] == f"Bearer {ODD_TOKEN}"
    names = {record.name for record in caplog.records}
    assert "pombolt.http" in names and any(name.startswith("httpcore") for name in names)
    for record in caplog.records:
        assert ODD_TOKEN not in record.getMessage(), record.name
    assert ODD_TOKEN not in caplog.text
    assert "about to leak ***" in caplog.text
    assert errors and all(ODD_TOKEN not in error for error in errors)
    assert re.search(r"GET http://127\.0\.0\.1:\d+/a\?access_token=\*\*\* -> 503 \(\d+ ms, attempt 1\)", caplog.text)
