"""A throwaway PostgreSQL cluster on a free 127.0.0.1 port (TEST_INFRA.md).

``initdb`` in a temp dir, ``pg_ctl start`` with the socket in that dir, ``fsync=off``; as root everything
runs as the ``postgres`` user (PostgreSQL refuses root). About 0.6 s to a usable database.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.infra import free_port

# Same rule as tests/conftest.py (not imported: importing it would reset the test environment).
IN_CI = os.environ.get("CI", "").lower() == "true"


@dataclass(frozen=True)
class Postgres:
    """A running cluster and one database in it."""

    port: int
    database: str
    data_dir: Path
    user: str = "postgres"

    @property
    def psycopg_url(self) -> str:
        """SQLAlchemy URL for the state store (psycopg 3)."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def asyncpg_url(self) -> str:
        """SQLAlchemy URL for Prefect's server (``PREFECT_API_DATABASE_CONNECTION_URL``)."""
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{self.database}"


def postgres_bin_dir() -> Path | None:
    """Where the PostgreSQL server binaries are (newest installed major version), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def require_postgres() -> Path:
    """The binaries' folder; skip loudly without PostgreSQL — or fail under CI=true."""
    bin_dir = postgres_bin_dir()
    if bin_dir is not None and (bin_dir / "initdb").exists():
        return bin_dir
    message = (
        "TOOL NOT AVAILABLE: PostgreSQL is not installed (needed for the state store and Prefect server at "
        "scale); scripts/test installs it with apt when run as root"
    )
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def _as_owner(argv: list[str]) -> list[str]:
    """Run as ``postgres`` when we are root (PostgreSQL refuses to run as root)."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _run(argv: list[str], log: Path) -> None:
    with log.open("ab") as out:
        done = subprocess.run(_as_owner(argv), stdout=out, stderr=subprocess.STDOUT, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:2])} failed (exit {done.returncode}); log: {log.read_text()[-2000:]}")


@contextmanager
def postgres(database: str = "pombolt", *, databases: tuple[str, ...] = ()) -> Iterator[Postgres]:
    """Start a cluster, create ``database`` (and ``databases``), yield it, stop it and delete its files.

    Skips (fails under CI=true) when PostgreSQL is not installed.
    """
    bin_dir = require_postgres()
    root = Path(tempfile.mkdtemp(prefix="pombolt-pg-"))
    data = root / "data"
    log = root / "postgres.log"
    log.touch()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(log, "postgres", "postgres")
        os.chmod(root, 0o700)
    port = free_port()
    started = False
    try:
        _run([str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "--no-sync", "-U", "postgres"], log)
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "30", "-o", options, "start"], log)
        started = True
        for name in (database, *databases):
            _run([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", name], log)
        yield Postgres(port=port, database=database, data_dir=data)
    finally:
        if started:
            _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop"], log)
        shutil.rmtree(root, ignore_errors=True)
