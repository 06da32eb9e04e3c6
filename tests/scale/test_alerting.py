"""Alerting through a real Prefect server (its triggers and actions services running): a deliberately failing
run makes the webhook receiver get exactly one notification, with project, run, phase, message and a link."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from core.models import RunStatus
from core.runtime import get_store
from core.settings import get_settings
from tests.fakes.base import FakeService, Request, Response, route
from tests.fakes.openai import FakeOpenAI
from tests.infra.prefect_server import PrefectServer
from usecases.alerts import RULES, ensure_alerting
from usecases.submit import Submission, submit

pytestmark = pytest.mark.scale


class WebhookReceiver(FakeService):
    """Accepts the notifications Prefect's CustomWebhookNotificationBlock posts."""

    name = "webhook"

    @route("POST", r"/hooks/alerts")
    def receive(self, request: Request) -> Response:
        return Response(204)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    fake = WebhookReceiver().start()
    yield fake
    fake.stop()


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(tokens={"the-right-key"}).start()
    monkeypatch.setenv("OPENAI_BASE_URL", fake.api_url)
    monkeypatch.setenv("OPENAI_API_KEY", "a-revoked-key")  # preflight fails with 401, before any paid call
    yield fake
    fake.stop()


def test_a_failing_run_sends_exactly_one_notification(
    server: PrefectServer, data_dir: Path, receiver: WebhookReceiver, llm: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POMBOLT_ALERT_WEBHOOK_URL", f"{receiver.url}/hooks/alerts")
    get_settings.cache_clear()
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        assert ensure_alerting() == [f"automation {r.name} created" for r in RULES]
        assert ensure_alerting() == [f"automation {r.name} updated" for r in RULES]  # idempotent

        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            assert all(len(client.read_automations_by_name(r.name)) == 1 for r in RULES)
        time.sleep(2)  # the triggers service reloads automations every few seconds

        from flows.pipeline import requirements_to_deployment

        store = get_store()
        project, run, _ = submit(
            store, "local", Submission(requirements="a notes app", name="doomed", generator="openai"), get_settings()
        )
        state = requirements_to_deployment(run.id, return_state=True)
    assert state.is_failed()
    failed = store.reload(run)
    assert (failed.status, failed.error_phase, failed.error_code) == (RunStatus.failed, "preflight", "provider.auth")

    deadline = time.monotonic() + 60
    while not receiver.requests("POST") and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # a second (duplicate) notification would arrive within this
    got = receiver.requests("POST")
    assert len(got) == 1, [r.body for r in got]
    message = got[0].json()
    assert message["subject"] == "Pom-Bolt: run failed in preflight (doomed)"
    body = message["body"]
    assert f"project: doomed ({project.id})" in body
    assert f"run: {run.id}" in body
    assert "phase: preflight" in body
    assert "error: provider.auth" in body
    assert f"request id: {run.request_id}" in body
    assert f"flow-run/{failed.flow_run_id}" in body, body
    assert "the-right-key" not in body and "a-revoked-key" not in body
