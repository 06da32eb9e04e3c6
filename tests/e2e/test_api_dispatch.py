# ruff: noqa: F811 - the shared API fixtures are imported by name
"""The API against a real Prefect server: the outbox dispatcher, cancel, and tenant Blocks.

Uses the session-wide Prefect harness; the dispatcher is pointed at a closed port to play "Prefect down".
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID

import httpx
import pytest
from fastapi.testclient import TestClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

from core.models import RunStatus
from core.store import Store
from tests.integration.api.conftest import (  # noqa: F401 - fixtures
    Tenant,
    acme,
    client,
    free_port,
    globex,
    live_server,
    make_client,
    make_tenant,
    store,
)
from usecases.dispatch import Dispatcher, PrefectUnreachable

REQ = "a pomodoro timer with a task list"


@pytest.fixture(scope="module")
def deployment_id() -> UUID:
    """The flow's ``default`` deployment, registered (no runner: flow runs stay scheduled)."""
    from flows.pipeline import requirements_to_deployment

    return UUID(str(requirements_to_deployment.to_deployment(name="default").apply()))


def flow_runs_of(deployment: UUID) -> list[object]:
    with get_client(sync_client=True) as c:
        return list(
            c.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment])), limit=200)
        )


def test_runs_stay_queued_while_prefect_is_down_then_go_out(
    client: TestClient, store: Store, acme: Tenant, deployment_id: UUID
) -> None:
    r = client.post("/api/requirements", json={"requirements": REQ}, headers=acme.headers)
    assert r.status_code == 202  # the API never waits on Prefect
    run_id = r.json()["run_id"]
    down = Dispatcher(store, api_url=f"http://127.0.0.1:{free_port()}/api")
    with pytest.raises(PrefectUnreachable, match="stay queued"):
        down.dispatch_once()
    assert store.get_run(run_id).status == RunStatus.queued
    assert "queued" in client.get(r.json()["status_url"], headers=acme.headers).json()["status"]

    assert Dispatcher(store).dispatch_once() == 1  # Prefect is back
    run = store.get_run(run_id)
    assert run.status == RunStatus.dispatched and run.flow_run_id and run.dispatched_at
    with get_client(sync_client=True) as c:
        flow_run = c.read_flow_run(UUID(run.flow_run_id))
    assert flow_run.parameters == {"run_id": run_id}  # ids only: never requirement text or secrets
    assert flow_run.deployment_id == deployment_id
    assert flow_run.idempotency_key == run_id


def test_fifty_posts_one_key_then_racing_dispatchers_make_one_flow_run(
    live_server: str, store: Store, acme: Tenant, deployment_id: UUID
) -> None:
    before = len(flow_runs_of(deployment_id))
    headers = {**acme.headers, "Idempotency-Key": "burst"}
    with ThreadPoolExecutor(max_workers=50) as pool:
        codes = list(
            pool.map(
                lambda _: (
                    httpx.post(
                        f"{live_server}/api/requirements", json={"requirements": REQ}, headers=headers, timeout=30
                    ).status_code
                ),
                range(50),
            )
        )
    assert codes == [202] * 50
    assert store.count_runs_by_status().get("queued") == 1

    barrier = threading.Barrier(3)

    def race() -> None:
        barrier.wait(10)
        Dispatcher(store).dispatch_once()

    threads = [threading.Thread(target=race) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(flow_runs_of(deployment_id)) == before + 1
    assert store.count_runs_by_status().get("dispatched") == 1


def test_cancel_a_dispatched_run_cancels_its_flow_run(
    client: TestClient, store: Store, acme: Tenant, deployment_id: UUID
) -> None:
    r = client.post("/api/requirements", json={"requirements": REQ, "name": "to-cancel"}, headers=acme.headers)
    Dispatcher(store).dispatch_once()
    run = store.get_run(r.json()["run_id"])
    assert run.status == RunStatus.dispatched
    out = client.post(f"/api/projects/{r.json()['project_id']}/cancel", headers=acme.headers)
    assert out.status_code == 200 and out.json()["status"] == "cancelled"
    with get_client(sync_client=True) as c:
        state = c.read_flow_run(UUID(str(run.flow_run_id))).state
    assert state is not None and state.type.value in ("CANCELLING", "CANCELLED")


def test_blocks_are_per_tenant_and_secrets_write_only(
    client: TestClient, acme: Tenant, globex: Tenant, store: Store
) -> None:
    secret = "nfp_supersecret_123"
    body = {"token": secret, "api_url": "http://127.0.0.1:9/api/v1"}
    r = client.put("/api/blocks/pombolt-netlify/prod", json=body, headers=acme.headers)
    assert r.status_code == 200, r.text
    assert r.json()["secrets"] == {"token": "set"} and secret not in r.text
    listed = client.get("/api/blocks", headers=acme.headers)
    assert [b["name"] for b in listed.json()] == ["prod"] and secret not in listed.text
    assert listed.json()[0]["fields"]["api_url"] == "http://127.0.0.1:9/api/v1"
    assert client.get("/api/blocks", headers=globex.headers).json() == []

    bad = client.put("/api/blocks/pombolt-netlify/prod2", json={"api_url": 5, "x": secret}, headers=acme.headers)
    assert bad.status_code == 422
    fields = {e["loc"][-1] for e in bad.json()["detail"]}
    assert "token" in fields and secret not in bad.text
    assert client.put("/api/blocks/no-such-type/x", json={}, headers=acme.headers).status_code == 404
    assert client.put("/api/blocks/pombolt-netlify/Bad_Name", json=body, headers=acme.headers).status_code == 422

    # a run may reference only its own tenant's Blocks
    other = client.post("/api/requirements", json={"requirements": REQ, "target": "prod"}, headers=globex.headers)
    assert other.status_code == 422 and "no target Block named 'prod'" in other.text
    own = client.post("/api/requirements", json={"requirements": REQ, "target": "prod"}, headers=acme.headers)
    assert own.status_code == 202


@pytest.mark.scale
def test_racing_dispatchers_on_postgresql_dispatch_each_run_once(deployment_id: UUID) -> None:
    from core.settings import get_settings
    from tests.infra.postgres import postgres
    from usecases.submit import Submission, submit_idempotent

    with postgres("pombolt_dispatch") as pg:
        pg_store = Store(pg.psycopg_url)
        pg_store.init()
        run_ids = {
            submit_idempotent(pg_store, "acme", Submission(requirements=f"app {i}"), get_settings(), key=None)[1].id
            for i in range(12)
        }
        before = len(flow_runs_of(deployment_id))
        barrier = threading.Barrier(3)
        counts: list[int] = []

        def race() -> None:
            barrier.wait(10)
            counts.append(Dispatcher(pg_store).dispatch_once())

        threads = [threading.Thread(target=race) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sum(counts) == 12, counts
        assert len(flow_runs_of(deployment_id)) == before + 12
        runs = [pg_store.get_run(r) for r in run_ids]
        assert {r.status for r in runs} == {RunStatus.dispatched}
        assert len({r.flow_run_id for r in runs}) == 12
        pg_store.engine.dispose()
