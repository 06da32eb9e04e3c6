"""Session-wide test setup: an isolated data dir and Prefect home, fast retries, loud skips.

Environment is set at import, before anything imports Prefect (which reads its settings once).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="pombolt-tests-"))
os.environ.update(
    {
        "POMBOLT_DATA_DIR": str(_SESSION_DIR / "data"),
        "PREFECT_HOME": str(_SESSION_DIR / "prefect"),
        "PREFECT_LOCAL_STORAGE_PATH": str(_SESSION_DIR / "prefect-results"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        "POMBOLT_TIMEOUT_TASK_RETRY_DELAY": "0.05",
        "POMBOLT_TIMEOUT_TASK_VERIFY": "30",
        "POMBOLT_TIMEOUT_VERIFY_POLL": "0.1",
        "POMBOLT_TIMEOUT_HTTP_TOTAL_RETRY": "10",
        "POMBOLT_TIMEOUT_HTTP_MAX_WAIT": "2",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
)
for var in ("PREFECT_API_URL", "POMBOLT_STORAGE_BLOCK", "POMBOLT_DATABASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
    os.environ.pop(var, None)

IN_CI = os.environ.get("CI", "").lower() == "true"


def require_tool(name: str, why: str) -> str:
    """Return the path of a tool; skip loudly without it — or fail under CI=true."""
    path = shutil.which(name)
    if path:
        return path
    message = f"TOOL NOT AVAILABLE: {name} is not installed ({why}); scripts/test installs it when run as root"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def require_prism() -> str:
    """Return the Prism binary (npm-installed into ``.cache/`` on first use); skip loudly without it — or fail
    under CI=true."""
    require_tool("node", "Prism (the contract proxy) runs on Node.js")
    from tests.fakes.prism import ensure_prism

    prism_bin = ensure_prism()
    if prism_bin is None:
        message = "TOOL NOT AVAILABLE: prism could not be installed with npm (see scripts/provision.sh)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return prism_bin


@pytest.fixture(autouse=True, scope="session")
def localhost_subdomains_resolve() -> Iterator[None]:
    """Resolve ``*.localhost`` to loopback in this process, as browsers and nss-myhostname do (RFC 6761).

    Local static sites live at ``http://<site>.localhost:<port>/``; Pom-Bolt's own client connects such names
    itself (``core.http``), but tests also fetch live URLs with plain httpx, and some containers' resolvers
    do not know the names.
    """
    system = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if isinstance(name, str) and name.lower().rstrip(".").endswith(".localhost"):
            host = "localhost"
        return system(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", getaddrinfo)
        yield


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh POMBOLT_DATA_DIR for one test (settings and store caches reset around it)."""
    from core.runtime import reset_caches

    path = tmp_path / "data"
    monkeypatch.setenv("POMBOLT_DATA_DIR", str(path))
    reset_caches()
    yield path
    reset_caches()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)
