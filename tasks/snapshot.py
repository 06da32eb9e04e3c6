"""Phase ``store``: write the checked files once, by SHA-256, plus their manifest (the snapshot)."""

from __future__ import annotations

from prefect import task

from core.settings import get_settings
from core.snapshots import SnapshotRef
from tasks.common import PhaseKey, retry_options
from tasks.context import PhaseContext
from tasks.generate import load_generation


@task(
    name="store",
    cache_policy=PhaseKey(),
    timeout_seconds=get_settings().timeouts.task_default,
    **retry_options(),
)
def store_snapshot(run_id: str, tenant_id: str, generation_id: str) -> SnapshotRef:
    """Store a checked generation as a content-addressed snapshot (writes nothing that exists)."""
    ctx = PhaseContext(run_id)
    record = load_generation(ctx.snapshots, generation_id)
    return ctx.snapshots.put(record.files)
