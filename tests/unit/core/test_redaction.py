"""Every log record made while a request id is set carries it as ``request_id``."""

from __future__ import annotations

import contextvars
import logging

import pytest

from core import redaction as request_log
from core.http import set_request_id


def test_records_carry_the_request_id_of_their_context(caplog: pytest.LogCaptureFixture) -> None:
    request_log.install()
    request_log.install()  # idempotent: the factory is wrapped once
    logger = logging.getLogger("pombolt.test")

    def in_a_run() -> None:
        set_request_id("req-42")
        logger.warning("inside")

    with caplog.at_level(logging.INFO, logger="pombolt.test"):
        contextvars.copy_context().run(in_a_run)
        logger.warning("outside")
    inside, outside = caplog.records
    assert inside.request_id == "req-42"  # type: ignore[attr-defined]
    assert outside.request_id == request_log.NO_REQUEST_ID  # type: ignore[attr-defined]
    line = logging.Formatter("%(request_id)s %(message)s").format(inside)
    assert line == "req-42 inside"


def test_the_filter_fills_records_made_without_the_factory() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    if hasattr(record, "request_id"):
        del record.request_id
    token = set_request_id("req-7")
    try:
        assert request_log.RequestIdFilter().filter(record) is True
    finally:
        from core.http import current_request_id

        current_request_id.reset(token)
    assert record.request_id == "req-7"  # type: ignore[attr-defined]
