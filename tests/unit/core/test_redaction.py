"""Redaction of secrets in text and logs, safe error messages, and request ids on every log record."""

from __future__ import annotations

import contextvars
import logging

import pytest
from pydantic import SecretStr

from core import redaction as request_log
from core.errors import ProviderRejected, RequirementsInvalid
from core.redaction import (
    MAX_ERROR_MESSAGE,
    RedactingFilter,
    current_request_id,
    install_redaction,
    redact,
    register_secret,
    safe_message,
    safe_text,
    set_request_id,
)


# --- request ids on log records --------------------------------------------------------------------
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
        current_request_id.reset(token)
    assert record.request_id == "req-7"  # type: ignore[attr-defined]


# --- redaction ---------------------------------------------------------------------------------------
def test_late_logger_covered_after_install(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    late = logging.getLogger("pombolt.tests.late_created")
    install_redaction()
    late.info("token is %s", "ghp_abcdefghijklmnop1234")
    assert "ghp_abcdefghijklmnop1234" not in caplog.text


def test_redacting_filter_rewrites_args() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "auth=%s n=%d", ("Bearer abcdefgh12345", 3), None)
    assert RedactingFilter().filter(record) is True
    assert record.getMessage() == "auth=Bearer *** n=3"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "token ghp_***"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "github_pat_***"),
        ("gho_abcdefghij0123456789", "gho_***"),
        ("key sk-proj-abcdefghijklmnop", "key sk-***"),
        ("Authorization: Bearer eyJhbGciOi.payload.sig", "Authorization: ***"),
        ("{'authorization': 'token abc'}", "{'authorization': '***'}"),
        ("header Bearer eyJhbGciOiJIUzI1NiJ9", "header Bearer ***"),
        ("use token 0123456789abcdef0123456789abcdef", "use token ***"),
        ("https://x-access-token:s3cr3t-value@github.com/o/r.git", "https://***@github.com/o/r.git"),
        ("x-access-token:s3cr3t-value@host", "x-access-token:***@host"),
        ("https://user:pw@example.com/", "https://***@example.com/"),
        ("GET /a?access_token=abc&x=1", "GET /a?access_token=***&x=1"),
        ("the token lacks permission; check the token in the Block 'gh'", None),
        ("Bad credentials", None),
    ],
)
def test_redact_shapes(text: str, expected: str | None) -> None:
    assert redact(text) == (text if expected is None else expected)


def test_redact_explicit_secrets() -> None:
    assert redact("a plainvalue42 b", ["plainvalue42"]) == "a *** b"
    assert redact("short abc stays", ["abc"]) == "short abc stays"
    assert redact("long-secret-xyz and long-secret", ["long-secret", "long-secret-xyz"]) == "*** and ***"


# --- messages fit to store -----------------------------------------------------------------------------
def test_a_foreign_exception_is_redacted_before_it_is_stored() -> None:
    secret = SecretStr("zq.UNUSUAL.shape.9917.secret")
    register_secret(secret)
    exc = RuntimeError(
        f"POST https://user:pw@api.example.com/x?access_token=abc123 failed; Authorization: Bearer "
        f"eyJhbGciOiJIUzI1NiJ9.x.y; value {secret.get_secret_value()}"
    )
    message = safe_message(exc)
    assert message.startswith("RuntimeError: POST https://***@api.example.com/x?access_token=***")
    for leaked in ("user:pw", "abc123", "eyJhbGciOiJIUzI1NiJ9", secret.get_secret_value()):
        assert leaked not in message


def test_a_foreign_exception_message_is_bounded_and_a_token_at_the_cut_is_still_masked() -> None:
    token = "ghp_" + "A1" * 20
    exc = ValueError("x" * (MAX_ERROR_MESSAGE - 20) + token + "y" * 5000)
    message = safe_message(exc)
    assert len(message) == MAX_ERROR_MESSAGE and message.endswith("...")
    assert "A1A1A1A1" not in message  # redacted before the cut, not cut into an unrecognisable shape


def test_our_errors_keep_their_words_and_odd_exceptions_still_give_a_message() -> None:
    assert safe_message(RequirementsInvalid("requirements are empty; describe the app")) == (
        "requirements are empty; describe the app"
    )
    assert safe_message(ProviderRejected("github", "was rejected (HTTP 422)")) == "github: was rejected (HTTP 422)"
    assert safe_message(KeyError()) == "KeyError"

    class Broken(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert safe_message(Broken()) == "Broken: (no message)"
    assert safe_text("short", limit=10) == "short"
    assert safe_text("a" * 20, limit=10) == "aaaaaaa..."
