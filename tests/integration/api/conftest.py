"""API fixtures: the real app on a real SQLite state store in a fresh data dir, and tenant keys."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from core.runtime import get_store
from core.settings import ApiSettings
from core.store import Store


@dataclass
class Tenant:
    """A tenant and its plain key."""

    id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture
def store(data_dir: Path) -> Store:
    return get_store()


@pytest.fixture
def make_tenant(store: Store) -> Callable[[str], Tenant]:
    def make(tenant_id: str) -> Tenant:
        _row, key = store.create_api_key(tenant_id)
        return Tenant(tenant_id, key)

    return make


@pytest.fixture
def acme(make_tenant: Callable[[str], Tenant]) -> Tenant:
    return make_tenant("acme")


@pytest.fixture
def globex(make_tenant: Callable[[str], Tenant]) -> Tenant:
    return make_tenant("globex")


@pytest.fixture
def make_client(store: Store) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(**api: object) -> TestClient:
        client = TestClient(create_app(api=ApiSettings(**api)))  # type: ignore[arg-type]
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_server(store: Store) -> Iterator[str]:
    """The app under uvicorn on 127.0.0.1 in a thread (real HTTP, real concurrency)."""
    app: FastAPI = create_app(api=ApiSettings(rate_limit="1000/second"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start within 15 s"
        assert thread.is_alive(), "uvicorn exited during start-up"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
