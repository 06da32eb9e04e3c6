"""Phase ``build``: turn a source snapshot into a site snapshot (static projects pass through)."""

from __future__ import annotations

from prefect import task

from core.settings import get_settings
from core.snapshots import SnapshotRef
from tasks.common import PhaseKey, retry_options
from tasks.context import PhaseContext


@task(
    name="build",
    cache_policy=PhaseKey(),
    timeout_seconds=get_settings().timeouts.task_build,
    **retry_options(),
)
def build(run_id: str, tenant_id: str, snapshot_id: str) -> SnapshotRef:
    """Build the site snapshot; a project without a build script is its own site."""
    ctx = PhaseContext(run_id)
    manifest = ctx.snapshots.manifest(snapshot_id)
    return SnapshotRef(snapshot_id=snapshot_id, file_count=len(manifest.files), total_bytes=manifest.total_bytes)
