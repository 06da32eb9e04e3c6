"""Provider-wide rate limits as Prefect global concurrency limits (DESIGN §5).

``provider_slot(name)`` takes one slot of the global limit ``name`` (``github-api``, ``netlify-api``,
``cloudflare-api``, ``vercel-api``) with ``strict=True`` — a limit that does not exist is an error, not
silently unlimited — but only inside a Prefect flow or task run. Outside a run context (unit tests,
benches, a Block used from a script) there is no Prefect server to ask, so it does nothing.
``pombolt init`` creates the limits (with slot decay, which ``rate_limit`` requires). Every provider
module takes its slots here, so the rule and its error message exist once.
"""

from __future__ import annotations

from prefect.concurrency._asyncio import ConcurrencySlotAcquisitionError
from prefect.context import FlowRunContext, TaskRunContext

from core.errors import ConfigError

__all__ = ["CLOUDFLARE_LIMIT", "GITHUB_LIMIT", "NETLIFY_LIMIT", "VERCEL_LIMIT", "in_prefect_run", "provider_slot"]

GITHUB_LIMIT = "github-api"  # content-creating GitHub calls (GitHub's secondary limit: ~80 a minute)
NETLIFY_LIMIT = "netlify-api"
CLOUDFLARE_LIMIT = "cloudflare-api"
VERCEL_LIMIT = "vercel-api"


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
