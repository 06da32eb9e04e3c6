"""The one HTTP client every provider module uses (GitHub, Netlify, Cloudflare, Vercel, verify).

``make_client`` returns a :class:`ProviderClient`: a sync ``httpx.Client`` with our timeouts, a
``User-Agent``, an ``X-Request-Id`` and a token that is unwrapped only inside an ``httpx.Auth`` at send
time. Requests are retried with tenacity on transient failures (transport errors, 429, 502/503/504, 500
for idempotent calls, GitHub secondary rate limits), honouring ``Retry-After`` and ``x-ratelimit-reset``
within the bounds of :class:`~core.settings.Timeouts`. What is left is translated into
:mod:`core.errors`. Tokens are kept out of logs and messages by :mod:`core.redaction`.
``*.localhost`` URLs connect to loopback whatever the resolver knows (:mod:`core.localhost`).
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import threading
import time
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any, TypedDict, Unpack

import httpx
import tenacity
from pydantic import BaseModel, SecretStr

from core.errors import AuthFailed, ProviderError, ProviderRejected, ProviderUnavailable, RateLimited
from core.localhost import localhost_mounts
from core.redaction import get_request_id, install_redaction, redact, register_secret
from core.settings import Timeouts, get_settings

log = logging.getLogger("pombolt.http")

try:
    _VERSION = metadata.version("pombolt")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    _VERSION = "0"

USER_AGENT = f"pombolt/{_VERSION}"
BACKOFF_BASE = 0.2  # seconds; first exponential wait when the provider gives no hint
MAX_MESSAGE = 300
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_IDEMPOTENT = _READS | {"PUT", "DELETE"}
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)  # safe to repeat any method
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


# --- client --------------------------------------------------------------------------------------
class RequestStats(BaseModel):
    """Counts of HTTP attempts a client made, for provider reports."""

    requests: int = 0
    writes: int = 0
    retries: int = 0


class RequestOptions(TypedDict, total=False):
    """Keyword options of :meth:`ProviderClient.request`, shared by its shortcuts."""

    params: Mapping[str, str | int | float | bool] | None
    json: Any
    content: bytes | str | None
    headers: Mapping[str, str] | None
    expected: Iterable[int]
    idempotent: bool | None


class _TokenAuth(httpx.Auth):
    """Sets ``Authorization`` from a ``SecretStr`` at send time; the plain token is never stored."""

    def __init__(self, token: SecretStr, scheme: str) -> None:
        self._token = token
        self._scheme = scheme

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        value = self._token.get_secret_value()
        request.headers["Authorization"] = f"{self._scheme} {value}" if self._scheme else value
        yield request


def _is_rate_limited(response: httpx.Response) -> bool:
    if response.status_code == 429:
        return True
    headers = response.headers
    return response.status_code == 403 and (
        "retry-after" in headers
        or headers.get("x-ratelimit-remaining") == "0"
        or "secondary rate limit" in response.text.lower()
    )


def _wait_hint(response: httpx.Response) -> float | None:
    """Return how many seconds the provider asks us to wait (``Retry-After``, ``x-ratelimit-reset``)."""
    retry_after, reset = response.headers.get("retry-after"), response.headers.get("x-ratelimit-reset")
    with contextlib.suppress(TypeError, ValueError):
        if retry_after is not None:
            if retry_after.strip().isdigit():
                return float(retry_after)
            return max(0.0, email.utils.parsedate_to_datetime(retry_after).timestamp() - time.time())
        if reset is not None and _is_rate_limited(response):
            return max(0.0, float(reset) - time.time())
    return None


def _last_outcome(state: tenacity.RetryCallState) -> Any:
    """What the last attempt gave, once the retries ran out (a response, or its exception raised again)."""
    return state.outcome.result() if state.outcome else None


def _provider_message(response: httpx.Response) -> str:
    """Extract the provider's own explanation from an error body, redacted and truncated."""
    body: Any = None
    with contextlib.suppress(ValueError):
        body = response.json()
    parts: list[Any] = []
    if isinstance(body, dict):
        error, errors = body.get("error"), body.get("errors")
        parts = [body.get("message"), error.get("message") if isinstance(error, dict) else error]
        if isinstance(errors, list) and errors:
            parts.append(errors[0].get("message") if isinstance(errors[0], dict) else errors[0])
    found = [part for part in parts if isinstance(part, str) and part]
    text = ": ".join(found) or response.text.strip() or response.reason_phrase
    text = redact(" ".join(text.split()))
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


@dataclass
class _Attempts:
    """One request across its attempts: what it is, and how many attempts it has made so far."""

    request: httpx.Request
    count: int = 0

    @property
    def method(self) -> str:
        """The request's method."""
        return self.request.method

    @property
    def where(self) -> str:
        """``METHOD /path`` for messages (the path redacted)."""
        return f"{self.request.method} {redact(self.request.url.path)}"


class ProviderClient:
    """A sync HTTP client for one provider with retries, request counts and error translation.

    Attributes:
        provider: Short provider name used in errors and logs, e.g. ``github``.
        stats: Attempts made by this client (``requests``, ``writes``, ``retries``).
    """

    def __init__(
        self,
        provider: str,
        client: httpx.Client,
        timeouts: Timeouts,
        *,
        request_id: str | None = None,
        block_name: str | None = None,
    ) -> None:
        self.provider = provider
        self.stats = RequestStats()
        self._client = client
        self._timeouts = timeouts
        self._request_id = request_id
        self._block_name = block_name
        self._lock = threading.Lock()
        self._backoff = tenacity.wait_exponential_jitter(
            initial=BACKOFF_BASE, max=timeouts.http_max_wait, jitter=BACKOFF_BASE
        )

    def __enter__(self) -> ProviderClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | float | bool] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        expected: Iterable[int] = (),
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send one request, retrying transient failures, and return a 2xx/3xx or expected response.

        Args:
            method: HTTP method.
            path: Path relative to the client's base URL (or an absolute URL).
            params: Query parameters.
            json: A JSON body.
            content: A raw body.
            headers: Extra headers for this request.
            expected: Error statuses to return instead of raising (never retried), e.g. ``(404,)``.
            idempotent: Whether repeating the call is safe; defaults by method (GET, HEAD, OPTIONS, PUT,
                DELETE). Idempotent calls are also retried on 500 and on errors after sending.

        Raises:
            AuthFailed: HTTP 401, or 403 that is not a rate limit.
            RateLimited: Still rate limited when the retry budget ran out.
            ProviderUnavailable: 5xx or a transport error after the retry budget.
            ProviderRejected: Any other 4xx.
        """
        method = method.upper()
        safe = method in _IDEMPOTENT if idempotent is None else idempotent
        allowed = frozenset(expected)
        built = self._client.build_request(
            method, path, params=params, json=json, content=content, headers=self._headers(headers)
        )
        attempts = _Attempts(built)  # each attempt sends the same request (the token is set at send time)
        try:
            response: httpx.Response = self._retrying(safe, allowed)(self._send, attempts)
        except httpx.TransportError as exc:
            raise self._unreachable(exc, attempts) from exc
        if response.status_code < 400 or response.status_code in allowed:
            return response
        raise self._translate(response, attempts.where, attempts.count)

    def get(self, path: str, **options: Unpack[RequestOptions]) -> httpx.Response:
        """``request("GET", path, ...)``."""
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Unpack[RequestOptions]) -> httpx.Response:
        """``request("POST", path, ...)``."""
        return self.request("POST", path, **options)

    def put(self, path: str, **options: Unpack[RequestOptions]) -> httpx.Response:
        """``request("PUT", path, ...)``."""
        return self.request("PUT", path, **options)

    def patch(self, path: str, **options: Unpack[RequestOptions]) -> httpx.Response:
        """``request("PATCH", path, ...)``."""
        return self.request("PATCH", path, **options)

    def delete(self, path: str, **options: Unpack[RequestOptions]) -> httpx.Response:
        """``request("DELETE", path, ...)``."""
        return self.request("DELETE", path, **options)

    def json(self, method: str, path: str, **options: Unpack[RequestOptions]) -> Any:
        """Send a request like :meth:`request` and return its parsed JSON body (``None`` when empty).

        Raises:
            ProviderError: The body is not JSON; plus everything :meth:`request` raises.
        """
        response = self.request(method, path, **options)
        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError as exc:
            kind = response.headers.get("content-type", "no content-type")
            where = f"{method.upper()} {redact(response.request.url.path)}"
            raise ProviderError(self.provider, f"{where} returned a body that is not JSON ({kind})") from exc

    # --- internals -------------------------------------------------------------------------------
    def _headers(self, headers: Mapping[str, str] | None) -> dict[str, str]:
        """The request's own headers, plus ``X-Request-Id`` (the client's, else the context's) unless given."""
        extra = dict(headers or {})
        request_id = self._request_id or get_request_id()
        if request_id and "X-Request-Id" not in extra:
            extra["X-Request-Id"] = request_id
        return extra

    def _send(self, attempts: _Attempts) -> httpx.Response:
        """One attempt: counted, sent and logged (a transport error is logged, then raised)."""
        attempts.count += 1
        with self._lock:
            self.stats.requests += 1
            self.stats.writes += int(attempts.method not in _READS)
        started = time.monotonic()
        try:
            response = self._client.send(attempts.request)
        except httpx.TransportError as exc:
            self._log(attempts, type(exc).__name__, started)
            raise
        self._log(attempts, str(response.status_code), started)
        return response

    def _retrying(self, safe: bool, allowed: frozenset[int]) -> tenacity.Retrying:
        """The retry policy of one request: what is retried, how long to wait, when to give up."""

        def retry_response(response: httpx.Response) -> bool:
            status = response.status_code
            if status in allowed:
                return False
            return _is_rate_limited(response) or status in (502, 503, 504) or (status == 500 and safe)

        def retry_error(exc: BaseException) -> bool:
            return isinstance(exc, _NOT_SENT) or (safe and isinstance(exc, _TRANSIENT))

        return tenacity.Retrying(
            retry=tenacity.retry_if_exception(retry_error) | tenacity.retry_if_result(retry_response),
            wait=self._wait,
            stop=tenacity.stop_after_attempt(self._timeouts.http_attempts)
            | tenacity.stop_before_delay(self._timeouts.http_total_retry),
            before_sleep=self._count_retry,
            retry_error_callback=_last_outcome,  # the last response, translated by the caller
        )

    def _unreachable(self, exc: httpx.TransportError, attempts: _Attempts) -> ProviderUnavailable:
        reason = redact(str(exc))[:MAX_MESSAGE] or "no detail"
        return ProviderUnavailable(
            self.provider,
            f"{attempts.where} failed after {attempts.count} attempt(s): {type(exc).__name__} ({reason})",
            retryable=isinstance(exc, _TRANSIENT),
        )

    def _wait(self, state: tenacity.RetryCallState) -> float:
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            hint = _wait_hint(outcome.result())
            if hint is not None:
                return min(hint, self._timeouts.http_max_wait)
        return self._backoff(state)

    def _count_retry(self, state: tenacity.RetryCallState) -> None:
        with self._lock:
            self.stats.retries += 1

    def _log(self, attempts: _Attempts, result: str, started: float) -> None:
        elapsed = (time.monotonic() - started) * 1000
        url = redact(str(attempts.request.url))
        log.debug("%s %s -> %s (%d ms, attempt %d)", attempts.method, url, result, elapsed, attempts.count)

    def _translate(self, response: httpx.Response, where: str, attempts: int) -> ProviderError:
        status = response.status_code
        detail = _provider_message(response)
        block = f"the Block '{self._block_name}'" if self._block_name else f"the {self.provider} Block"
        if _is_rate_limited(response):
            hint = _wait_hint(response)
            after = f"; it asks to wait {hint:.0f} s" if hint is not None else ""
            msg = f"{where} still rate limited after {attempts} attempt(s) (HTTP {status}){after}"
            return RateLimited(self.provider, msg, status=status)
        if status == 401:
            msg = f"rejected the token (HTTP 401); check the token in {block}"
            return AuthFailed(self.provider, msg, status=status)
        if status == 403:
            msg = f"the token lacks permission for {where} (HTTP 403: {detail}); grant it in {block}"
            return AuthFailed(self.provider, msg, status=status)
        if status >= 500:
            msg = f"{where} failed with HTTP {status} after {attempts} attempt(s): {detail}"
            return ProviderUnavailable(self.provider, msg, status=status)
        return ProviderRejected(self.provider, f"{where} was rejected (HTTP {status}): {detail}", status=status)


def make_client(
    provider: str,
    base_url: str,
    *,
    token: SecretStr | None = None,
    auth_scheme: str = "Bearer",
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
    timeouts: Timeouts | None = None,
    transport: httpx.BaseTransport | None = None,
    block_name: str | None = None,
) -> ProviderClient:
    """Build the client a provider module uses for every call.

    Args:
        provider: Short provider name for errors and logs, e.g. ``github``.
        base_url: Base URL of the API; it must not contain credentials.
        token: The API token; sent as ``Authorization: <auth_scheme> <token>`` and masked in logs.
        auth_scheme: Authorization scheme (``Bearer``, ``token``); empty sends the token alone.
        headers: Extra default headers (e.g. ``Accept``).
        request_id: ``X-Request-Id`` for every request; defaults to :func:`get_request_id` per request.
        timeouts: Time and attempt limits; defaults to the process settings.
        transport: An httpx transport (tests, proxies).
        block_name: Name of the Block holding the token, quoted in authentication errors.

    Returns:
        A :class:`ProviderClient`; close it (or use it as a context manager) when done.
    """
    install_redaction()
    limits = timeouts or get_settings().timeouts
    auth = None
    if token is not None:
        register_secret(token)
        auth = _TokenAuth(token, auth_scheme)
    client = httpx.Client(
        base_url=base_url,
        auth=auth,
        headers={"User-Agent": USER_AGENT, **(headers or {})},
        timeout=httpx.Timeout(limits.http_read, connect=limits.http_connect),
        transport=transport,
        mounts=localhost_mounts() if transport is None else None,
        follow_redirects=True,
    )
    return ProviderClient(provider, client, limits, request_id=request_id, block_name=block_name)
