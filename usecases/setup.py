"""``pombolt init``: register Block types, create the work pool and the global concurrency limits.

Provider rate limits are Prefect global concurrency limits used with ``strict=True``, so a missing
limit is an error rather than silently unlimited (DESIGN §5); this is where they are created.
"""

from __future__ import annotations

from collections.abc import Iterator

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists, PrefectHTTPStatusError

from blocks.catalog import register_block_types
from core.concurrency import LIMITS
from core.errors import ConfigError

WORK_POOL = "pombolt"


def ensure_limits() -> list[str]:
    """Create any missing global concurrency limit; return the names created."""
    created = []
    with get_client(sync_client=True) as client:
        for name, (slots, decay) in LIMITS.items():
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=slots, slot_decay_per_second=decay)
                )
                created.append(name)
            except (ObjectAlreadyExists, PrefectHTTPStatusError):
                continue
    return created


def bootstrap() -> Iterator[str]:
    """Do everything ``pombolt init`` does, yielding one line per step."""
    for slug in register_block_types():
        yield f"block type {slug} registered"
    try:
        with get_client(sync_client=True) as client:
            try:
                client.create_work_pool(WorkPoolCreate(name=WORK_POOL, type="process"))
                yield f"work pool {WORK_POOL} (process) created"
            except ObjectAlreadyExists:
                yield f"work pool {WORK_POOL} exists"
    except PrefectHTTPStatusError as exc:
        raise ConfigError(f"could not create work pool {WORK_POOL}: {exc}") from exc
    for name in ensure_limits():
        yield f"global concurrency limit {name} created"
    from usecases.alerts import ensure_alerting, ensure_crash_detection

    yield from ensure_alerting()
    yield from ensure_crash_detection()
    yield "init done"
