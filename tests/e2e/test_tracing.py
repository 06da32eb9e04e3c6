"""Tracing through a real pipeline run: one span per phase (run id, phase, request id, cached), every task
run tagged with the run's request id, and every log record of the run carrying it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from core import redaction as request_log
from core.runtime import get_store
from core.settings import get_settings
from flows import tracing
from tests.e2e.test_pipeline import pombolt


@pytest.fixture
def spans(data_dir: Path) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert tracing.configure(exporter)
    yield exporter
    tracing.reset()
    from blocks.targets.static_host import stop

    stop(get_settings())


def test_each_phase_is_a_span_and_each_task_and_log_line_has_the_request_id(spans: InMemorySpanExporter) -> None:
    # Prefect re-configures its loggers' handlers when a flow starts, so collect records where they are made
    request_log.install()
    made: list[logging.LogRecord] = []
    factory = logging.getLogRecordFactory()

    def collecting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        made.append(record)
        return record

    logging.setLogRecordFactory(collecting)
    try:
        code, report, err = pombolt("run", "a counter with dark mode", "--name", "traced", "--json")
    finally:
        logging.setLogRecordFactory(factory)
    assert code == 0, err
    assert report is not None
    run = get_store().get_run(report["run_id"])

    by_phase = {s.attributes["pombolt.phase"]: s for s in spans.get_finished_spans() if s.attributes}
    ran = [p["name"] for p in report["phases"] if p["status"] == "completed"]
    assert sorted(by_phase) == sorted(ran) and "generate" in ran and "verify" in ran
    for phase, span in by_phase.items():
        assert span.name == f"pombolt.phase.{phase}"
        assert span.attributes is not None
        assert span.attributes["pombolt.run.id"] == run.id
        assert span.attributes["pombolt.request.id"] == run.request_id
        assert span.attributes["pombolt.cached"] is False

    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.flow_run_id])))
    assert tasks and all(f"request:{run.request_id}" in t.tags for t in tasks), [t.tags for t in tasks]

    from_run = [r for r in made if r.name in ("prefect.flow_runs", "prefect.task_runs", "pombolt.flow")]
    assert {"prefect.flow_runs", "prefect.task_runs"} <= {r.name for r in from_run}
    # the first line of the flow run is logged before the tracker knows the run; every later one has its id
    started = next(i for i, r in enumerate(from_run) if "started (request id" in r.getMessage())
    assert all(r.request_id == run.request_id for r in from_run[started:])  # type: ignore[attr-defined]

    spans.clear()
    code, _, err = pombolt("run", "a counter with dark mode", "--name", "traced", "--json")
    assert code == 0, err
    cached = {s.attributes["pombolt.phase"]: s.attributes["pombolt.cached"] for s in spans.get_finished_spans()}  # type: ignore[index]
    assert cached["generate"] is True
