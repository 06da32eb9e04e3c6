"""OpenTelemetry spans: exported to an in-memory exporter when configured, nothing at all otherwise."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from core.errors import AuthFailed
from flows import tracing


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in tracing.ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    tracing.reset()
    yield
    tracing.reset()


def test_without_an_endpoint_nothing_is_configured_and_spans_are_no_ops() -> None:
    assert tracing.configure() is False
    with tracing.phase_span("run-1", "generate", "req-1") as span:
        span.set("pombolt.cached", True)  # accepted, goes nowhere
        span.fail(ValueError("x"))


def test_an_otlp_endpoint_turns_export_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # nothing is sent: no span ends
    assert tracing.configure() is True


def test_a_phase_span_carries_run_phase_request_and_cached() -> None:
    exporter = InMemorySpanExporter()
    assert tracing.configure(exporter) is True
    with tracing.phase_span("run-1", "generate", "req-1") as span:
        span.set("pombolt.cached", False)
    with pytest.raises(AuthFailed), tracing.phase_span("run-1", "preflight") as span:
        error = AuthFailed("github", "token rejected by GitHub; save a new token")
        span.fail(error)
        raise error

    done, failed = exporter.get_finished_spans()
    assert done.name == "pombolt.phase.generate"
    assert dict(done.attributes or {}) == {
        "pombolt.run.id": "run-1",
        "pombolt.phase": "generate",
        "pombolt.request.id": "req-1",
        "pombolt.cached": False,
    }
    assert done.status.status_code == StatusCode.UNSET
    assert failed.name == "pombolt.phase.preflight"
    assert failed.status.status_code == StatusCode.ERROR
    assert (failed.attributes or {})["pombolt.error.code"] == "provider.auth"
    assert "token" not in (failed.status.description or "")  # the type only, never the message
    assert done.resource.attributes["service.name"] == "pombolt"
