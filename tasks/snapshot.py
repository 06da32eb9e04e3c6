"""Phase ``store``: write the checked files once, by SHA-256, plus their manifest (the snapshot)."""

from __future__ import annotations

from core.settings import get_settings
from core.snapshots import SnapshotRef
from tasks._generations import load_generation
from tasks._phase import PhaseContext, Reuse, phase_task


def snapshot_kept(ref: SnapshotRef, reuse: Reuse) -> bool:
    """Reuse test: a cached snapshot counts only while its manifest and every blob are in storage."""
    return reuse.snapshots.exists(ref.snapshot_id)


@phase_task("store", timeout=get_settings().timeouts.task_default, reuse_if=snapshot_kept)
def store_snapshot(run_id: str, tenant_id: str, generation_id: str) -> SnapshotRef:
    """Store a checked generation as a content-addressed snapshot (writes nothing that exists)."""
    ctx = PhaseContext(run_id)
    record = load_generation(ctx.snapshots, generation_id)
    return ctx.snapshots.put(record.files)
