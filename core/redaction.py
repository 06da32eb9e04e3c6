"""Keeping secrets out of text, and request ids on everything a request or run does.

- **Redaction.** :func:`redact` masks registered secrets (:func:`register_secret`) and common token shapes;
  :class:`RedactingFilter` applies it to log records (:func:`install_redaction` attaches it); :func:`safe_text`
  and :func:`safe_message` make any text, or any exception, fit to store and show: redacted and bounded.
- **Request ids.** The id lives in :data:`current_request_id` (set by the API per request and by the flow per
  run; outgoing HTTP calls send it as ``X-Request-Id``). :func:`install` wraps the log-record factory once per
  process, so every logger — ours, Prefect's run loggers, libraries' — gets ``record.request_id`` without each
  call site passing it. Formats may use ``%(request_id)s`` (``-`` when no id is set).
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from collections.abc import Iterable
from contextvars import ContextVar, Token
from typing import Any

from pydantic import SecretStr

from core.errors import PomBoltError

# --- request id ----------------------------------------------------------------------------------
current_request_id: ContextVar[str | None] = ContextVar("pombolt_request_id", default=None)
NO_REQUEST_ID = "-"


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
    hierarchy gets the filter. Idempotent; ``core.http.make_client`` calls it, and entry points should call
    it after imports so module loggers created since are covered too.
    """
    prefixes = tuple(roots)
    children = tuple(p + "." for p in prefixes)
    for name in [*prefixes, *(n for n in list(logging.root.manager.loggerDict) if n.startswith(children))]:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


# --- text fit to store ---------------------------------------------------------------------------
MAX_ERROR_MESSAGE = 1000  # characters of an error message kept in the state store


def safe_text(text: str, limit: int = MAX_ERROR_MESSAGE) -> str:
    """``text`` redacted, then cut to ``limit`` characters (redacted first: a cut could hide a token's shape)."""
    text = redact(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def safe_message(exc: BaseException, limit: int = MAX_ERROR_MESSAGE) -> str:
    """The message to store and show for ``exc``: redacted and at most ``limit`` characters.

    Our own errors give their message; any other exception (a library's, a bug) gives ``Type: text``, whose
    text may quote a URL with credentials, a header or a token — it is redacted like everything else.
    """
    if isinstance(exc, PomBoltError):
        return safe_text(exc.message, limit)
    try:
        detail = str(exc)
    except Exception:  # a broken __str__ must not lose the error it describes
        detail = "(no message)"
    return safe_text(f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__, limit)


# --- request id on log records -------------------------------------------------------------------
_lock = threading.Lock()
_installed = False


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to a record that lacks one (for handlers configured by hand)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Set ``record.request_id`` from the current context; never drops a record."""
        if getattr(record, "request_id", None) is None:
            record.request_id = get_request_id() or NO_REQUEST_ID
        return True


def install() -> None:
    """Make every new log record carry ``request_id`` (idempotent; safe from several threads)."""
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            record.request_id = get_request_id() or NO_REQUEST_ID
            return record

        logging.setLogRecordFactory(factory)
        _installed = True
