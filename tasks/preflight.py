"""Phase ``preflight``: every Block the run uses proves its credentials before anything is paid for."""

from __future__ import annotations

from datetime import timedelta

from prefect import task

from blocks.catalog import Kind, resolve
from core.settings import get_settings
from tasks.common import PhaseKey, retry_options
from tasks.context import PhaseContext
from tasks.models import PreflightReport


@task(
    name="preflight",
    cache_policy=PhaseKey(),
    cache_expiration=timedelta(minutes=10),
    timeout_seconds=get_settings().timeouts.task_default,
    **retry_options(),
)
def preflight(run_id: str, refs: dict[str, str], fingerprints: dict[str, str]) -> PreflightReport:
    """Check the credentials and reachability of the run's generator, repository and target Blocks."""
    ctx = PhaseContext(run_id)
    checked: list[str] = []
    kinds: tuple[Kind, ...] = ("generator", "repository", "target")
    for kind in kinds:
        block = resolve(kind, refs[kind], tenant_id=ctx.run.tenant_id, store=ctx.store)
        if block is None:
            continue
        block.preflight()  # type: ignore[attr-defined]
        checked.append(f"{kind}:{refs[kind]}")
    return PreflightReport(checked=checked)
