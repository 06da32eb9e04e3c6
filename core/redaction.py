"""Request ids on log records: every record made while a request id is set carries ``record.request_id``.

The id lives in :data:`core.http.current_request_id` (set by the API per request and by the flow per run);
:func:`install` wraps the log-record factory once per process, so every logger — ours, Prefect's run
loggers, libraries' — gets the attribute without each call site passing it. Formats may use
``%(request_id)s`` (``-`` when no id is set).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from core.http import get_request_id

NO_REQUEST_ID = "-"
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
