"""Changes, rollbacks, versions, retries and usage over the API (real app, real SQLite)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from core.models import Project, RunKind, RunStatus
from core.store import Store
from tests.integration.api.conftest import Tenant
from usecases.iterate import effective_kind


def _live_project(store: Store, tenant: str, name: str = "app") -> Project:
    """A project with one verified version (as a finished pipeline run leaves it)."""
    store.ensure_tenant(tenant)
    project = store.create_project(
        Project(tenant_id=tenant, name=name, generator_ref="offline", repository_ref="none", target_ref="local-static")
    )
    run = store.create_run(project, "a counter")
    run = store.transition(run, RunStatus.running)
    run = store.transition(
        run, RunStatus.verified, snapshot_id="a" * 64, site_snapshot_id="a" * 64, live_url="http://127.0.0.1:1/app/"
    )
    store.add_version(run)
    return project


def test_a_change_is_accepted_and_a_second_one_waits(client: TestClient, acme: Tenant, store: Store) -> None:
    project = _live_project(store, acme.id)
    first = client.post(f"/api/projects/{project.id}/changes", json={"request": "add notes"}, headers=acme.headers)
    assert first.status_code == 202, first.text
    run = store.get_run(first.json()["run_id"])
    assert run.kind == RunKind.change and run.status == RunStatus.queued
    assert run.details["combined_requirements"] == "a counter\nadd notes"
    second = client.post(f"/api/projects/{project.id}/changes", json={"request": "add a timer"}, headers=acme.headers)
    assert second.status_code == 409
    assert run.id[:12] in second.json()["detail"]


def test_a_change_before_the_first_version_is_a_conflict_that_says_what_to_do(
    client: TestClient, acme: Tenant, store: Store
) -> None:
    accepted = client.post("/api/requirements", json={"requirements": "a counter"}, headers=acme.headers).json()
    r = client.post(f"/api/projects/{accepted['project_id']}/changes", json={"request": "x"}, headers=acme.headers)
    assert r.status_code == 409
    assert "no live version" in r.json()["detail"] and "send the change again" in r.json()["detail"]
    assert [run.kind for run in store.runs(accepted["project_id"])] == [RunKind.create]


def test_rollback_and_versions(client: TestClient, acme: Tenant, store: Store) -> None:
    project = _live_project(store, acme.id)
    versions = client.get(f"/api/projects/{project.id}/versions", headers=acme.headers)
    assert versions.status_code == 200
    assert [v["number"] for v in versions.json()] == [1]
    missing = client.post(f"/api/projects/{project.id}/rollback", json={"version": 9}, headers=acme.headers)
    assert missing.status_code == 404 and "no version 9" in missing.json()["detail"]
    bad = client.post(f"/api/projects/{project.id}/rollback", json={"version": 0}, headers=acme.headers)
    assert bad.status_code == 422
    ok = client.post(f"/api/projects/{project.id}/rollback", json={"version": 1}, headers=acme.headers)
    assert ok.status_code == 202
    run = store.get_run(ok.json()["run_id"])
    assert run.kind == RunKind.rollback and run.snapshot_id == "a" * 64


def test_retry_of_a_failed_change_is_still_a_change(client: TestClient, acme: Tenant, store: Store) -> None:
    project = _live_project(store, acme.id)
    accepted = client.post(f"/api/projects/{project.id}/changes", json={"request": "add notes"}, headers=acme.headers)
    change = store.get_run(accepted.json()["run_id"])
    store.transition(store.transition(change, RunStatus.running), RunStatus.failed, error_code="phase.deploy")
    retried = client.post(f"/api/projects/{project.id}/retry", headers=acme.headers)
    assert retried.status_code == 202, retried.text
    run = store.get_run(retried.json()["run_id"])
    assert run.kind == RunKind.retry and effective_kind(run) == RunKind.change
    assert run.details["combined_requirements"] == "a counter\nadd notes"


def test_another_tenants_project_is_not_found(client: TestClient, acme: Tenant, globex: Tenant, store: Store) -> None:
    project = _live_project(store, acme.id)
    for method, path, body in [
        ("GET", f"/api/projects/{project.id}/versions", None),
        ("POST", f"/api/projects/{project.id}/changes", {"request": "x"}),
        ("POST", f"/api/projects/{project.id}/rollback", {"version": 1}),
    ]:
        response = client.request(method, path, json=body, headers=globex.headers)
        assert response.status_code == 404, (path, response.text)
    assert len(store.runs(project.id)) == 1


def test_usage_reports_spend_and_budgets(client: TestClient, acme: Tenant, store: Store) -> None:
    project = _live_project(store, acme.id)
    run = store.runs(project.id)[0]
    store.update(run, prompt_tokens=120, completion_tokens=30)
    tenant = store.ensure_tenant(acme.id)
    store.update(tenant, monthly_token_budget=1000)
    body = client.get("/api/usage", headers=acme.headers).json()
    assert body["tokens_this_month"] == 150
    assert body["monthly_token_budget"] == 1000
    assert body["runs_today"] == 1
    assert client.get("/api/usage").status_code == 401
