"""OpenTelemetry spans for pipeline phases, exported only when an OTLP endpoint is configured.

Optional: install the ``otel`` extra (``pip install 'pombolt[otel]'``) and set
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``); spans then go to that collector
over OTLP/HTTP from a background batch processor (flushed at process exit). Without the SDK, or without an
endpoint, :func:`phase_span` costs nothing and exports nothing. Pom-Bolt keeps its own tracer provider
instead of replacing the global one, so it never changes what Prefect or other libraries export.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span

TRACER_NAME = "pombolt"
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

_lock = threading.Lock()
_provider: TracerProvider | None = None
_resolved = False


def endpoint_configured() -> bool:
    """Whether an OTLP endpoint is set in the environment."""
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def configure(exporter: SpanExporter | None = None) -> bool:
    """Export spans to ``exporter`` (tests: an in-memory one), or to OTLP when an endpoint is configured.

    Args:
        exporter: Where spans go, synchronously; ``None`` means OTLP/HTTP when configured, else nothing.

    Returns:
        Whether spans are exported from now on (False when the SDK is missing or nothing is configured).
    """
    global _provider, _resolved
    with _lock:
        _resolved = True
        _provider = None
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        except ImportError:
            return False
        if exporter is not None:
            processor: Any = SimpleSpanProcessor(exporter)
        elif endpoint_configured():
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            except ImportError:
                return False
            processor = BatchSpanProcessor(OTLPSpanExporter())  # endpoint, headers, timeout from OTEL_* env
        else:
            return False
        provider = TracerProvider(resource=Resource.create({"service.name": TRACER_NAME}))
        provider.add_span_processor(processor)
        _provider = provider
        return True


def reset() -> None:
    """Forget the configuration (the next span reads the environment again); flushes what was exported."""
    global _provider, _resolved
    with _lock:
        if _provider is not None:
            _provider.shutdown()
        _provider, _resolved = None, False


def _current_provider() -> TracerProvider | None:
    if not _resolved:
        configure()
    return _provider


class PhaseSpan:
    """What a phase may add to its span; every method is a no-op when tracing is off."""

    def __init__(self, span: Span | None) -> None:
        self._span = span

    def set(self, key: str, value: str | bool | int | float) -> None:
        """Set one attribute (e.g. ``pombolt.cached``)."""
        if self._span is not None:
            self._span.set_attribute(key, value)

    def fail(self, exc: BaseException) -> None:
        """Mark the span failed with the error's type and code (never its message: it may hold input)."""
        if self._span is None:
            return
        from opentelemetry.trace import Status, StatusCode

        self._span.set_attribute("pombolt.error.code", str(getattr(exc, "code", "internal")))
        self._span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


@contextmanager
def phase_span(run_id: str, phase: str, request_id: str | None = None) -> Iterator[PhaseSpan]:
    """A span ``pombolt.phase.<phase>`` with the run id, phase and request id (no-op when tracing is off).

    Args:
        run_id: The run's id.
        phase: The phase's name.
        request_id: The run's request id, when known.
    """
    provider = _current_provider()
    if provider is None:
        yield PhaseSpan(None)
        return
    attributes: dict[str, str] = {"pombolt.run.id": run_id, "pombolt.phase": phase}
    if request_id:
        attributes["pombolt.request.id"] = request_id
    tracer = provider.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(
        f"pombolt.phase.{phase}", attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as span:
        yield PhaseSpan(span)
