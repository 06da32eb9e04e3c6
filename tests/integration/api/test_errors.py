"""One handler answers every PomBoltError a route lets through, with the status from core.errors.HTTP_STATUS."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import core.errors as errors
from api.app import create_app
from core.errors import (
    BudgetExceeded,
    NoLiveVersion,
    PathRuleViolation,
    PomBoltError,
    ProviderError,
    RequirementsInvalid,
    http_status,
)
from core.store import Store
from tests.integration.api.conftest import Tenant

ALL_ERRORS = sorted(
    (obj for obj in vars(errors).values() if isinstance(obj, type) and issubclass(obj, PomBoltError)),
    key=lambda cls: cls.__name__,
)


def _instance(cls: type[PomBoltError]) -> PomBoltError:
    if issubclass(cls, PathRuleViolation):
        return cls("a/../b", "no-parent-segments", "escapes the project")
    if issubclass(cls, ProviderError):
        return cls("github", "said no", status=400)
    return cls(f"{cls.__name__}: what was wrong and what to do")


@pytest.fixture
def raising(store: Store) -> Callable[[PomBoltError], TestClient]:
    """A client of the real app with one extra route that raises the given error."""

    def make(error: PomBoltError) -> TestClient:
        app: FastAPI = create_app()

        def boom() -> None:
            raise error

        app.router.add_api_route("/boom", boom)
        app.router.routes.insert(0, app.router.routes.pop())  # before the status page mounted at "/"
        return TestClient(app)

    return make


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_every_error_is_answered_with_its_status_from_the_table(
    raising: Callable[[PomBoltError], TestClient], cls: type[PomBoltError]
) -> None:
    error = _instance(cls)
    with raising(error) as client:
        r = client.get("/boom")
    assert r.status_code == http_status(error)
    assert r.json() == {"detail": error.message, "code": error.code, "retryable": error.retryable}
    assert ("www-authenticate" in r.headers) is (r.status_code == 401)


@pytest.mark.parametrize(
    ("error", "status"),
    [(BudgetExceeded("over the monthly token budget"), 402), (NoLiveVersion("not live yet"), 409)],
    ids=["budget", "no-live-version"],
)
def test_the_statuses_clients_rely_on(
    raising: Callable[[PomBoltError], TestClient], error: PomBoltError, status: int
) -> None:
    with raising(error) as client:
        assert client.get("/boom").status_code == status


def test_an_error_naming_its_field_is_a_field_level_422(raising: Callable[[PomBoltError], TestClient]) -> None:
    with raising(RequirementsInvalid("requirements are empty", field="requirements")) as client:
        body = client.get("/boom").json()
    assert body["detail"] == [{"loc": ["body", "requirements"], "msg": "requirements are empty", "type": "value_error"}]
    assert body["code"] == "input.requirements"


def test_an_unknown_block_reference_names_its_field_and_code(client: TestClient, acme: Tenant) -> None:
    r = client.post("/api/requirements", json={"requirements": "a timer", "target": "prod"}, headers=acme.headers)
    assert r.status_code == 422
    assert r.json()["code"] == "config.unknown_block"
    assert [e["loc"] for e in r.json()["detail"]] == [["body", "target"]]


def test_a_revoked_key_is_401_with_a_bearer_challenge(client: TestClient, store: Store, acme: Tenant) -> None:
    assert client.post("/api/requirements", json={"requirements": "a timer"}, headers=acme.headers).status_code == 202
    store.revoke_api_key(acme.key[:10])
    r = client.post("/api/requirements", json={"requirements": "a clock"}, headers=acme.headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "unknown or revoked" in r.json()["detail"]
