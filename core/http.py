"""The one HTTP client every provider module uses (GitHub, Netlify, Cloudflare, Vercel, verify).

``make_client`` returns a :class:`ProviderClient`: a sync ``httpx.Client`` with our timeouts, a
``User-Agent``, an ``X-Request-Id`` and a token that is unwrapped only inside an ``httpx.Auth`` at send
time. Requests are retried with tenacity on transient failures (transport errors, 429, 502/503/504, 500
for idempotent calls, GitHub secondary rate limits), honouring ``Retry-After`` and ``x-ratelimit-reset``
within the bounds of :class:`~core.settings.Timeouts`. What is left is translated into
:mod:`core.errors`. ``redact`` and :class:`RedactingFilter` keep tokens out of logs and messages.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import re
import threading
import time
import weakref
from collections.abc import Generator, Iterable, Mapping
from contextvars import ContextVar, Token
from importlib import metadata
from typing import Any, TypedDict, Unpack

import httpx
import tenacity
from pydantic import BaseModel, SecretStr

from core.errors import AuthFailed, ProviderError, ProviderRejected, ProviderUnavailable, RateLimited
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

# --- request id ----------------------------------------------------------------------------------
current_request_id: ContextVar[str | None] = ContextVar("pombolt_request_id", default=None)


def set_request_id(request_id: str | None) -> Token[str | None]:
    """Set the ``X-Request-Id`` sent by clients that were not given one (once per flow run)."""
    return current_request_id.set(request_id)


def get_request_id() -> str | None:
    """Return the request id of the current context, if any."""
    return current_request_id.get()


# --- redaction -----------------------------------------------------------------------------------
_MASK = "***"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^'\"\r\n,}]+"), r"\1" + _MASK),
    (re.compile(r"(?i)x-access-token:[^@\s]+@"), "x-access-token:" + _MASK + "@"),
    (re.compile(r"(://)[^/\s@]+@"), r"\1" + _MASK + "@"),  # any userinfo in a URL
    (re.compile(r"\bgithub_pat_\w{8,}"), "github_pat_" + _MASK),
    (re.compile(r"\b(gh[pousr]_)[A-Za-z0-9]{8,}"), r"\1" + _MASK),
    (re.compile(r"\b(sk-)[\w-]{8,}"), r"\1" + _MASK),
    (re.compile(r"(?i)\b(bearer\s+)[\w.~+/=-]{8,}"), r"\1" + _MASK),
    (re.compile(r"(?i)\b(token\s+)(?=[\w.~+/=-]*\d)[\w.~+/=-]{16,}"), r"\1" + _MASK),
    (re.compile(r"(?i)\b((?:access_)?token|api_?key|client_secret|password)=[^&\s'\"]+"), r"\1=" + _MASK),
)
_SECRETS: weakref.WeakSet[SecretStr] = weakref.WeakSet()  # masked while some client still holds them
_SECRETS_LOCK = threading.Lock()
_MIN_SECRET = 6  # shorter values would mangle ordinary text


def register_secret(secret: SecretStr) -> None:
    """Mask ``secret`` in every redacted text for as long as the object is alive."""
    if len(secret.get_secret_value()) >= _MIN_SECRET:
        with _SECRETS_LOCK:
            _SECRETS.add(secret)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask secret values and common token shapes in ``text``.

    Args:
        text: Any text that may hold a secret (a log line, a provider message, a URL).
        secrets: Extra values to mask, besides the process-wide registry.

    Returns:
        The text with each secret replaced by ``***``.
    """
    values = {s for s in secrets if len(s) >= _MIN_SECRET}
    with _SECRETS_LOCK:
        registered = list(_SECRETS)
    values.update(s.get_secret_value() for s in registered)
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, _MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's formatted message in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace ``record.msg``/``args`` by their redacted rendering; never drops a record."""
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's problem, not ours
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


_FILTER = RedactingFilter()
_LOGGER_ROOTS = ("pombolt", "httpx", "httpcore")


def install_redaction(roots: Iterable[str] = _LOGGER_ROOTS) -> None:
    """Attach :class:`RedactingFilter` to each root logger and every existing descendant.

    Logger filters do not apply to records propagated from children, so every logger in the
    hierarchy gets the filter. Idempotent; ``make_client`` calls it, and entry points should call it
    after imports so module loggers created since are covered too.
    """
    prefixes = tuple(roots)
    children = tuple(p + "." for p in prefixes)
    for name in [*prefixes, *(n for n in list(logging.root.manager.loggerDict) if n.startswith(children))]:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


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
        extra = dict(headers or {})
        request_id = self._request_id or get_request_id()
        if request_id and "X-Request-Id" not in extra:
            extra["X-Request-Id"] = request_id
        url = self._client.build_request(method, path, params=params).url
        where, attempt = f"{method} {redact(url.path)}", 0

        def once() -> httpx.Response:
            nonlocal attempt
            attempt += 1
            with self._lock:
                self.stats.requests += 1
                self.stats.writes += int(method not in _READS)
            started = time.monotonic()
            try:
                response = self._client.request(method, path, params=params, json=json, content=content, headers=extra)
            except httpx.TransportError as exc:
                self._log(method, url, type(exc).__name__, started, attempt)
                raise
            self._log(method, url, str(response.status_code), started, attempt)
            return response

        def retry_response(response: httpx.Response) -> bool:
            status = response.status_code
            if status in allowed:
                return False
            return _is_rate_limited(response) or status in (502, 503, 504) or (status == 500 and safe)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(
                lambda e: isinstance(e, _NOT_SENT) or (safe and isinstance(e, _TRANSIENT))
            )
            | tenacity.retry_if_result(retry_response),
            wait=self._wait,
            stop=tenacity.stop_after_attempt(self._timeouts.http_attempts)
            | tenacity.stop_before_delay(self._timeouts.http_total_retry),
            before_sleep=self._count_retry,
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        )
        try:
            response: httpx.Response = retrying(once)
        except httpx.TransportError as exc:
            reason = redact(str(exc))[:MAX_MESSAGE] or "no detail"
            raise ProviderUnavailable(
                self.provider,
                f"{where} failed after {attempt} attempt(s): {type(exc).__name__} ({reason})",
                retryable=isinstance(exc, _TRANSIENT),
            ) from exc
        if response.status_code < 400 or response.status_code in allowed:
            return response
        raise self._translate(response, where, attempt)

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

    def _log(self, method: str, url: httpx.URL, result: str, started: float, attempt: int) -> None:
        elapsed = (time.monotonic() - started) * 1000
        log.debug("%s %s -> %s (%d ms, attempt %d)", method, redact(str(url)), result, elapsed, attempt)

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
        follow_redirects=True,
    )
    return ProviderClient(provider, client, limits, request_id=request_id, block_name=block_name)
