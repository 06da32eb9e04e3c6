"""Phase ``build``: turn a source snapshot into a site snapshot.

A project whose ``package.json`` has a ``build`` script is built with npm in an isolated work dir
(:mod:`tasks._npm_build`) and its output folder is stored as the site snapshot; any other project is its own site.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from prefect import task

from core.settings import get_settings
from core.snapshots import SnapshotRef
from tasks._npm_build import build_script, run_build
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
    package = manifest.by_path().get("package.json")
    raw = ctx.snapshots.read_blob(package.sha256, path=package.path) if package else None
    if build_script(raw) is None:
        return SnapshotRef(snapshot_id=snapshot_id, file_count=len(manifest.files), total_bytes=manifest.total_bytes)
    settings = get_settings()
    with tempfile.TemporaryDirectory(prefix="pombolt-source-") as tmp:
        source = Path(tmp) / "project"
        ctx.snapshots.materialize(snapshot_id, source)
        output = run_build(
            source,
            timeout=settings.timeouts.task_build,
            limits=settings.limits,
        )
    return ctx.snapshots.put(output.files)
