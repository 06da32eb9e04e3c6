"""Bearer auth on every /api route: missing, wrong and revoked keys are 401."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from core.models import Run
from core.store import Store
from tests.integration.api.conftest import Tenant

ROUTES = [
    ("POST", "/api/requirements"),
    ("GET", "/api/projects"),
    ("GET", "/api/projects/x"),
    ("GET", "/api/projects/x/files"),
    ("POST", "/api/projects/x/retry"),
    ("POST", "/api/projects/x/cancel"),
    ("GET", "/api/blocks"),
    ("PUT", "/api/blocks/pombolt-netlify/site"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_missing_key_is_401(client: TestClient, method: str, path: str) -> None:
    r = client.request(method, path, json={"requirements": "x"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in r.json()["detail"]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_wrong_key_is_401(client: TestClient, acme: Tenant, method: str, path: str) -> None:
    r = client.request(method, path, json={"requirements": "x"}, headers={"Authorization": f"Bearer {acme.key}x"})
    assert r.status_code == 401
    assert "unknown or revoked" in r.json()["detail"]


def test_basic_scheme_is_401(client: TestClient, acme: Tenant) -> None:
    r = client.get("/api/projects", headers={"Authorization": f"Basic {acme.key}"})
    assert r.status_code == 401


def test_revoked_key_is_401(client: TestClient, store: Store, acme: Tenant) -> None:
    assert client.get("/api/projects", headers=acme.headers).status_code == 200
    store.revoke_api_key(acme.key[:10])
    r = client.get("/api/projects", headers=acme.headers)
    assert r.status_code == 401


def test_unauthenticated_routes_stay_open(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/").status_code == 200


def test_a_key_revoked_after_use_cannot_submit_again(client: TestClient, store: Store, acme: Tenant) -> None:
    """The submission path caches which tenant a key belongs to, never that it is live."""
    assert client.post("/api/requirements", json={"requirements": "a timer"}, headers=acme.headers).status_code == 202
    store.revoke_api_key(acme.key[:10])
    r = client.post("/api/requirements", json={"requirements": "a clock"}, headers=acme.headers)
    assert r.status_code == 401
    assert "unknown or revoked" in r.json()["detail"]
    with store.session() as s:
        assert s.exec(select(Run.requirements).where(Run.tenant_id == "acme")).all() == ["a timer"]


@pytest.fixture
def revoked_after_use(
    make_client: Callable[..., TestClient], store: Store, make_tenant: Callable[[str], Tenant]
) -> tuple[TestClient, Tenant, Tenant]:
    """A client limited to 3 submissions a minute; two keys of one tenant, the old one used once, then revoked
    (so the submission path has its tenant cached)."""
    client = make_client(rate_limit="3/minute")
    old, new = make_tenant("acme"), make_tenant("acme")
    assert client.post("/api/requirements", json={"requirements": "a timer"}, headers=old.headers).status_code == 202
    store.revoke_api_key(old.key[:10])
    return client, old, new


def test_a_revoked_key_cannot_use_up_its_former_tenants_rate_limit(
    revoked_after_use: tuple[TestClient, Tenant, Tenant],
) -> None:
    client, old, new = revoked_after_use
    refused = [
        client.post("/api/requirements", json={"requirements": f"spam {i}"}, headers=old.headers).status_code
        for i in range(5)
    ]
    assert refused == [401] * 5
    # the revoked key's first refused request counted (it was checked after the limit); later ones did not
    codes = [
        client.post("/api/requirements", json={"requirements": f"app {i}"}, headers=new.headers).status_code
        for i in range(2)
    ]
    assert codes == [202, 429]


def test_a_key_of_another_tenant_never_writes_under_this_one(client: TestClient, acme: Tenant, globex: Tenant) -> None:
    a = client.post("/api/requirements", json={"requirements": "a timer"}, headers=acme.headers).json()
    g = client.post("/api/requirements", json={"requirements": "a timer"}, headers=globex.headers).json()
    assert a["project_id"] != g["project_id"]
    assert client.get(f"/api/projects/{a['project_id']}", headers=globex.headers).status_code == 404


def test_a_revoked_key_learns_nothing_of_the_tenants_blocks(
    revoked_after_use: tuple[TestClient, Tenant, Tenant],
) -> None:
    """Unknown Block names are a 422 to a live key; to a revoked one, whose tenant is cached, a 401 first."""
    client, old, new = revoked_after_use
    probe = {"requirements": "a timer", "target": "no-such-site"}
    codes = [client.post("/api/requirements", json=probe, headers=old.headers).status_code for _ in range(4)]
    assert codes == [401] * 4
    assert client.post("/api/requirements", json=probe, headers=new.headers).status_code == 422
