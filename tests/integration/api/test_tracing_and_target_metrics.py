"""The request id a client sends becomes the run's; /metrics counts finished runs per target and outcome."""

from __future__ import annotations

from fastapi.testclient import TestClient

from core.models import RunStatus
from core.store import Store
from tests.integration.api.conftest import Tenant

REQ = "a pomodoro timer with a task list"


def test_the_sent_request_id_becomes_the_runs_and_is_answered(client: TestClient, store: Store, acme: Tenant) -> None:
    headers = {**acme.headers, "X-Request-Id": "client-req.42:a"}
    r = client.post("/api/requirements", json={"requirements": REQ, "name": "pomo"}, headers=headers)
    assert r.status_code == 202, r.text
    assert r.headers["X-Request-Id"] == "client-req.42:a"
    assert store.get_run(r.json()["run_id"], "acme").request_id == "client-req.42:a"


def test_without_a_request_id_one_is_made_and_answered(client: TestClient, store: Store, acme: Tenant) -> None:
    r = client.post("/api/requirements", json={"requirements": REQ}, headers=acme.headers)
    assert r.status_code == 202, r.text
    run = store.get_run(r.json()["run_id"], "acme")
    assert r.headers["X-Request-Id"] == run.request_id and len(run.request_id) == 32


def test_a_request_id_that_could_inject_into_logs_or_headers_is_refused(
    client: TestClient, store: Store, acme: Tenant
) -> None:
    headers = {**acme.headers, "X-Request-Id": "abc def\tx"}
    r = client.post("/api/requirements", json={"requirements": REQ}, headers=headers)
    assert r.status_code == 400
    assert "X-Request-Id may hold only" in r.json()["detail"]
    assert store.count_runs_by_status() == {}


def _finish(store: Store, run_id: str, status: RunStatus) -> None:
    run = store.get_run(run_id, "acme")
    run = store.transition(run, RunStatus.dispatched)
    run = store.transition(run, RunStatus.running)
    store.transition(run, status)


def test_metrics_count_finished_runs_per_target_and_outcome(client: TestClient, store: Store, acme: Tenant) -> None:
    store.bind_block("acme", "site", "pombolt-s3-website", "t-acme--site")
    ids = []
    for i, target in enumerate(["site", "site", "site", "local-static", None]):
        body = {"requirements": f"{REQ} {i}", "name": f"p{i}", **({"target": target} if target else {})}
        r = client.post("/api/requirements", json=body, headers=acme.headers)
        assert r.status_code == 202, r.text
        ids.append(r.json()["run_id"])
    for run_id, status in zip(ids[:4], [RunStatus.verified, RunStatus.verified, RunStatus.failed, RunStatus.failed]):
        _finish(store, run_id, status)  # the fifth stays queued: not counted

    text = client.get("/metrics").text
    assert 'pombolt_target_runs_total{outcome="verified",target="pombolt-s3-website"} 2.0' in text
    assert 'pombolt_target_runs_total{outcome="failed",target="pombolt-s3-website"} 1.0' in text
    assert 'pombolt_target_runs_total{outcome="failed",target="pombolt-local-static-site"} 1.0' in text
    assert 'outcome="verified",target="pombolt-local-static-site"' not in text
    assert 'pombolt_target_success_ratio{target="pombolt-s3-website"} 0.666' in text
    assert 'pombolt_target_success_ratio{target="pombolt-local-static-site"} 0.0' in text
