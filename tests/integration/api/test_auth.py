"""Bearer auth on every /api route: missing, wrong and revoked keys are 401."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

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
