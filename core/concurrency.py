"""Concurrency in one place: provider rate limits, tenant fairness and the limit definitions (DESIGN §5).

Every limit is a Prefect global concurrency limit used with ``strict=True``, so a missing limit is an error
rather than silently unlimited.

- Provider rate limits: ``provider_slot(name)`` takes one slot of ``github-api``, ``netlify-api``,
  ``cloudflare-api`` or ``vercel-api`` — but only inside a Prefect flow or task run; outside one (unit tests,
  benches, a Block used from a script) there is no Prefect server to ask, so it does nothing. ``pombolt init``
  creates them from :data:`LIMITS` (with slot decay, which ``rate_limit`` requires).
- Fairness between tenants: each run holds one slot of ``tenant:<id>``. Prefect's tag concurrency limits
  apply to task runs only, so a tenant with 100 queued runs could otherwise take every worker. The pipeline
  flow holds a slot for its whole run (``with tenant_slot(run.tenant_id):``); the limit is created on demand
  with ``POMBOLT_TENANT_CONCURRENCY`` slots (default 2). Slots are leased: a run whose process dies frees its
  slot when the lease (``lease_seconds``) runs out.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect.concurrency._asyncio import ConcurrencySlotAcquisitionError
from prefect.context import FlowRunContext, TaskRunContext

from core.errors import ConfigError
from core.settings import get_settings

GITHUB_LIMIT = "github-api"  # content-creating GitHub calls (GitHub's secondary limit: ~80 a minute)
NETLIFY_LIMIT = "netlify-api"
CLOUDFLARE_LIMIT = "cloudflare-api"
VERCEL_LIMIT = "vercel-api"


#: name -> (slots, slot decay per second). Decay makes a limit usable with ``rate_limit``:
#: github-api at 80 writes a minute is 80 slots refilled at 80/60 per second.
LIMITS: dict[str, tuple[int, float]] = {
    GITHUB_LIMIT: (80, 80 / 60),
    NETLIFY_LIMIT: (3, 3 / 60),
    CLOUDFLARE_LIMIT: (60, 1.0),
    VERCEL_LIMIT: (20, 20 / 60),
    "llm-api": (8, 0.0),
}


def in_prefect_run() -> bool:
    """Tell whether the caller runs inside a Prefect flow run or task run."""
    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def provider_slot(name: str) -> None:
    """Wait for one slot of the global rate limit ``name`` when inside a Prefect run; else do nothing.

    Raises:
        ConfigError: The limit does not exist (run ``pombolt init`` to create it).
    """
    if not in_prefect_run():
        return
    from prefect.concurrency.sync import rate_limit

    try:
        rate_limit(name, strict=True)
    except ConcurrencySlotAcquisitionError as exc:
        raise ConfigError(
            f"global concurrency limit {name!r} is missing or has no slot decay; run 'pombolt init' to create it"
        ) from exc


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
