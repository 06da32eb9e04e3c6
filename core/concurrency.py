"""Fairness between tenants: each run holds one slot of the global concurrency limit ``tenant:<id>``.

Prefect's tag concurrency limits apply to task runs only, so a tenant with 100 queued runs could otherwise
take every worker. The pipeline flow holds a slot for its whole run (``with tenant_slot(run.tenant_id):``);
the limit is created on demand with ``POMBOLT_TENANT_CONCURRENCY`` slots (default 2) and used with
``strict=True``, so a limit that could not be created is an error rather than silently unlimited. Slots are
leased: a run whose process dies frees its slot when the lease (``lease_seconds``) runs out.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from core.settings import get_settings


def tenant_limit_name(tenant_id: str) -> str:
    """The global concurrency limit of a tenant."""
    return f"tenant:{tenant_id}"


def ensure_tenant_limit(tenant_id: str, slots: int | None = None, client: Any = None) -> bool:
    """Create the tenant's limit when it does not exist yet (an operator may have changed its slots since).

    Args:
        tenant_id: The tenant.
        slots: Slots of a new limit (default ``POMBOLT_TENANT_CONCURRENCY``).
        client: A sync Prefect client to use (default: one for the configured API).

    Returns:
        True when this call created it.
    """
    if client is None:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as own:
            return ensure_tenant_limit(tenant_id, slots, own)
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound, PrefectHTTPStatusError

    name = tenant_limit_name(tenant_id)
    try:
        client.read_global_concurrency_limit_by_name(name)
        return False
    except ObjectNotFound:
        pass
    try:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name=name, limit=slots or get_settings().tenant_concurrency)
        )
    except (ObjectAlreadyExists, PrefectHTTPStatusError):  # created by a concurrent run of the same tenant
        return False
    return True


@contextmanager
def tenant_slot(tenant_id: str, *, timeout_seconds: float | None = None, lease_seconds: float = 300) -> Iterator[None]:
    """Hold one slot of ``tenant:<id>`` (created on demand) for the duration of the block.

    Raises:
        TimeoutError: When no slot was free within ``timeout_seconds`` (None waits as long as it takes).
    """
    from prefect.concurrency.sync import concurrency

    ensure_tenant_limit(tenant_id)
    with concurrency(
        tenant_limit_name(tenant_id),
        occupy=1,
        timeout_seconds=timeout_seconds,
        lease_duration=lease_seconds,
        strict=True,
    ):
        yield
