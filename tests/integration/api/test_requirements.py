"""POST /api/requirements: 202 into the outbox, field-level 422s, idempotency, rate limit, body cap."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from core.models import RunStatus
from core.settings import ApiSettings
from core.store import Store
from tests.integration.api.conftest import Tenant

REQ = "a pomodoro timer with a task list"


def test_accepts_into_the_outbox_without_prefect(client: TestClient, store: Store, acme: Tenant) -> None:
    r = client.post("/api/requirements", json={"requirements": REQ, "name": "pomo"}, headers=acme.headers)
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "queued"
    assert body["status_url"].endswith(f"/api/projects/{body['project_id']}")
    run = store.get_run(body["run_id"], "acme")
    assert run.status == RunStatus.queued and run.flow_run_id is None and run.requirements == REQ
    assert store.get_project(body["project_id"], "acme").name == "pomo"
    shown = client.get(body["status_url"], headers=acme.headers).json()
    assert shown["latest_run"]["id"] == body["run_id"] and shown["status"] == "queued"


@pytest.mark.parametrize(
    ("base_url", "root_path"),
    [("http://testserver", ""), ("https://api.example.com:8443", ""), ("http://10.0.0.7", "/pombolt")],
)
def test_status_url_is_relative_to_the_root_path_whatever_the_host(
    store: Store, acme: Tenant, base_url: str, root_path: str
) -> None:
    """Without POMBOLT_API_PUBLIC_URL the status URL is a path (the Host header is the client's to forge)."""
    with TestClient(create_app(), base_url=base_url, root_path=root_path) as client:
        for text in ("a timer", "a clock"):
            body = client.post("/api/requirements", json={"requirements": text}, headers=acme.headers).json()
            assert body["status_url"] == f"{root_path}/api/projects/{body['project_id']}"
            assert client.get(body["status_url"].removeprefix(root_path), headers=acme.headers).status_code == 200


@pytest.mark.parametrize("public_url", ["https://api.example.com", "https://example.com/pombolt/"])
def test_status_url_is_absolute_on_the_configured_public_url(store: Store, acme: Tenant, public_url: str) -> None:
    with TestClient(create_app(api=ApiSettings(public_url=public_url)), base_url="http://10.0.0.7") as client:
        body = client.post("/api/requirements", json={"requirements": "a timer"}, headers=acme.headers).json()
    assert body["status_url"] == f"{public_url.rstrip('/')}/api/projects/{body['project_id']}"


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"requirements": ""}, "requirements", "at least 1"),
        ({"requirements": "   \n\t "}, "requirements", "empty"),
        ({"requirements": "x" * 20_001}, "requirements", "20000-character limit"),
        ({"requirements": REQ, "name": "Bad Name!"}, "name", "pattern"),
        ({"requirements": REQ, "target": "someone-elses"}, "target", "no target Block named 'someone-elses'"),
        ({"requirements": REQ, "generator": "nope"}, "generator", "offline, openai"),
        ({"requirements": REQ, "colour": "red"}, "colour", "Extra inputs"),
        ({}, "requirements", "Field required"),
    ],
)
def test_bad_input_is_a_field_level_422_and_writes_nothing(
    client: TestClient, store: Store, acme: Tenant, payload: dict[str, Any], field: str, words: str
) -> None:
    r = client.post("/api/requirements", json=payload, headers=acme.headers)
    assert r.status_code == 422, r.text
    errors = r.json()["detail"]
    assert any(e["loc"][-1] == field and words in e["msg"] for e in errors), errors
    assert store.count_runs_by_status() == {}


def test_idempotency_same_body_same_run_other_body_409(client: TestClient, store: Store, acme: Tenant) -> None:
    headers = {**acme.headers, "Idempotency-Key": "k-1"}
    first = client.post("/api/requirements", json={"requirements": REQ}, headers=headers)
    again = client.post("/api/requirements", json={"requirements": REQ}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["run_id"] == first.json()["run_id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = client.post("/api/requirements", json={"requirements": REQ + " and sounds"}, headers=headers)
    assert other.status_code == 409
    assert "different request body" in other.json()["detail"]
    assert store.count_runs_by_status() == {"queued": 1}


def test_idempotency_key_is_scoped_per_tenant(client: TestClient, acme: Tenant, globex: Tenant) -> None:
    a = client.post("/api/requirements", json={"requirements": REQ}, headers={**acme.headers, "Idempotency-Key": "k"})
    b = client.post("/api/requirements", json={"requirements": REQ}, headers={**globex.headers, "Idempotency-Key": "k"})
    assert a.status_code == b.status_code == 202
    assert a.json()["run_id"] != b.json()["run_id"]


def test_fifty_concurrent_posts_with_one_key_make_one_run(live_server: str, store: Store, acme: Tenant) -> None:
    headers = {**acme.headers, "Idempotency-Key": "burst-1"}

    def post(_: int) -> httpx.Response:
        return httpx.post(f"{live_server}/api/requirements", json={"requirements": REQ}, headers=headers, timeout=30)

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(post, range(50)))
    assert [r.status_code for r in responses] == [202] * 50, {r.status_code: r.text for r in responses}
    assert len({r.json()["run_id"] for r in responses}) == 1
    assert store.count_runs_by_status() == {"queued": 1}
    assert len(store.list_projects("acme")) == 1


def test_rate_limit_is_per_tenant_with_retry_after(make_client: Any, acme: Tenant, globex: Tenant) -> None:
    client = make_client(rate_limit="3/minute")
    codes = [
        client.post("/api/requirements", json={"requirements": REQ}, headers=acme.headers).status_code for _ in range(4)
    ]
    assert codes == [202, 202, 202, 429]
    limited = client.post("/api/requirements", json={"requirements": REQ}, headers=acme.headers)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 61
    assert client.post("/api/requirements", json={"requirements": REQ}, headers=globex.headers).status_code == 202


def test_body_over_the_cap_is_413(make_client: Any, store: Store, acme: Tenant) -> None:
    client = make_client(max_body_bytes=1000)
    r = client.post("/api/requirements", json={"requirements": "y" * 2000}, headers=acme.headers)
    assert r.status_code == 413 and "over 1000 bytes" in r.json()["detail"]
    chunks = (b'{"requirements": "' + b"z" * 600, b"z" * 600 + b'"}')  # no Content-Length: counted as it streams
    r = client.post(
        "/api/requirements", content=iter(chunks), headers={**acme.headers, "content-type": "application/json"}
    )
    assert r.status_code == 413
    assert store.count_runs_by_status() == {}
