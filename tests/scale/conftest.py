"""Scale tests: real servers in subprocesses (Prefect server, runners, workers, PostgreSQL), one Prefect
server for the whole session (it costs 10-60 s to start on a busy 2-core machine)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.infra.prefect_server import PrefectServer, prefect_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A Prefect server (SQLite) in a subprocess on a free 127.0.0.1 port with its own PREFECT_HOME."""
    with prefect_server(tmp_path_factory.mktemp("prefect-server")) as srv:
        yield srv
