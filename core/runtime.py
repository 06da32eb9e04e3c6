"""Process-wide runtime: Prefect's environment, the state store and the storage Block.

``configure_prefect_env`` must run before Prefect is imported (Prefect reads its settings at import),
so that everything local — Prefect's home, its database and task results — lives in Pom-Bolt's data
dir, and a shared ``S3Bucket`` storage Block also holds Prefect results when one is configured.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from typing import TYPE_CHECKING, cast

from core.errors import UnknownBlock
from core.settings import Settings, get_settings

if TYPE_CHECKING:
    from core.snapshots import FileSystemBlock, SnapshotStore
    from core.store import Store


def configure_prefect_env(settings: Settings | None = None, *, quiet_console: bool = False) -> None:
    """Point Prefect's home and result storage into the data dir (unless already set).

    Call before ``import prefect``; it only sets variables the user has not set. ``quiet_console``
    keeps Prefect's own INFO lines off the terminal (the CLI prints phases itself); run logs still
    reach the Prefect API and UI at INFO.
    """
    settings = settings or get_settings()
    defaults = {
        "PREFECT_HOME": str(settings.data_dir / "prefect"),
        "PREFECT_LOCAL_STORAGE_PATH": str(settings.storage_dir / "prefect-results"),
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
        # Prefect's temporary server migrates a fresh database first: 20-30 s on a 2-core machine, past
        # Prefect's own 20 s default, after which `pombolt run` on a new data dir could not start at all
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    }
    if quiet_console:
        defaults["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "WARNING"
    if settings.storage_block:
        defaults["PREFECT_DEFAULT_RESULT_STORAGE_BLOCK"] = settings.storage_block
    for name, value in defaults.items():
        os.environ.setdefault(name, value)


@lru_cache(maxsize=8)
def _store_for(url: str) -> Store:
    from core.store import Store

    store = Store(url)
    store.init()
    return store


def get_store(settings: Settings | None = None) -> Store:
    """The state store for the current settings (created and checked once per process)."""
    settings = settings or get_settings()
    if settings.db_url.startswith("sqlite"):
        settings.ensure_data_dir()
    return _store_for(settings.db_url)


@lru_cache(maxsize=8)
def _storage_for(block_ref: str | None, local_dir: str) -> FileSystemBlock:
    if not block_ref:
        from prefect.filesystems import LocalFileSystem

        return cast("FileSystemBlock", LocalFileSystem(basepath=local_dir))
    from prefect.blocks.core import Block

    try:
        return Block.load(block_ref)  # type: ignore[return-value]
    except ValueError as exc:
        raise UnknownBlock(
            f"storage Block {block_ref!r} was not found; save it first or unset POMBOLT_STORAGE_BLOCK"
        ) from exc


def get_storage(settings: Settings | None = None) -> FileSystemBlock:
    """The storage Block holding snapshots (a LocalFileSystem in the data dir by default)."""
    settings = settings or get_settings()
    return _storage_for(settings.storage_block, str(settings.storage_dir))


def get_snapshots(tenant_id: str, settings: Settings | None = None) -> SnapshotStore:
    """The snapshot store of one tenant."""
    from core.snapshots import SnapshotStore

    return SnapshotStore(get_storage(settings), tenant_id)


def storage_identity(settings: Settings | None = None) -> str:
    """A short id of where snapshots live; part of every cache key, so caches never cross stores."""
    settings = settings or get_settings()
    where = settings.storage_block or str(settings.storage_dir)
    return hashlib.sha256(where.encode()).hexdigest()[:16]


def reset_caches() -> None:
    """Forget cached settings, stores and storage (tests switch data dirs)."""
    get_settings.cache_clear()
    _store_for.cache_clear()
    _storage_for.cache_clear()
