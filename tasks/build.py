"""Phase ``build``: turn a source snapshot into a site snapshot.

A project whose ``package.json`` has a ``build`` script is built with npm in a sandboxed work dir
(:mod:`tasks._build.npm`, :mod:`tasks._build.sandbox`: no network but the registry for install, no host files,
limits; refused where bubblewrap is missing, unless the local CLI tenant opted out) and its output folder is
stored as the site snapshot; any other project is its own site.
The result names the site's ``index.html`` hash, which verify compares with what the live URL serves.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from core.settings import get_settings
from core.snapshots import Manifest
from tasks._build.npm import run_build
from tasks._build.project import build_script
from tasks._phase import PhaseContext, Reuse, phase_task
from tasks.models import SiteRef


def site_kept(site: SiteRef, reuse: Reuse) -> bool:
    """Reuse test: a cached site counts only while its snapshot is complete in storage."""
    return reuse.snapshots.exists(site.snapshot_id)


def site_ref(manifest: Manifest, *, built: bool) -> SiteRef:
    """What deploy and verify need to know of a site snapshot."""
    index = manifest.by_path().get("index.html")
    return SiteRef(
        snapshot_id=manifest.snapshot_id,
        file_count=len(manifest.files),
        total_bytes=manifest.total_bytes,
        index_sha256=index.sha256 if index else None,
        built=built,
    )


@phase_task("build", timeout=get_settings().timeouts.task_build, reuse_if=site_kept)
def build(run_id: str, tenant_id: str, snapshot_id: str) -> SiteRef:
    """Build the site snapshot; a project without a build script is its own site."""
    ctx = PhaseContext(run_id)
    manifest = ctx.snapshots.manifest(snapshot_id)
    package = manifest.by_path().get("package.json")
    raw = ctx.snapshots.read_blob(package.sha256, path=package.path) if package else None
    if build_script(raw) is None:
        return site_ref(manifest, built=False)
    settings = get_settings()
    with tempfile.TemporaryDirectory(prefix="pombolt-source-") as tmp:
        source = Path(tmp) / "project"
        ctx.snapshots.materialize(snapshot_id, source)
        output = run_build(
            source,
            timeout=settings.timeouts.task_build,
            limits=settings.limits,
            tenant_id=tenant_id,
            sandbox=settings.build,
        )
    stored = ctx.snapshots.put(output.files)
    return site_ref(ctx.snapshots.manifest(stored.snapshot_id), built=True)
