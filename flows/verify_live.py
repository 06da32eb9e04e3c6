"""Flow ``verify-live-sites`` (scheduled): re-check every project's latest version is still what is served.

Thin: one task per live version (:func:`tasks.livecheck.check_version`), each recorded as a ``LiveCheck`` row;
a failed check emits ``pombolt.site.check.failed`` (the alerting automation in ``core/notify.py`` listens for
it). Checks are never cached: each scheduled run fetches every site again.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from pydantic import BaseModel

from core.runtime import get_store
from core.settings import get_settings
from tasks.livecheck import check_version, latest_versions

#: The event a failed re-check emits.
CHECK_FAILED_EVENT = "pombolt.site.check.failed"


class LiveCheckSummary(BaseModel):
    """What one scheduled pass found (ids and URLs only)."""

    checked: int
    failed: list[str]


@task(name="check-live-site", cache_policy=NO_CACHE, timeout_seconds=get_settings().timeouts.task_verify)
def check_live_site(version_id: str) -> bool:
    """Re-check one version's live URL; record the outcome and emit an event when it failed."""
    store = get_store()
    version = store.find_version(version_id)
    if version is None:
        return True  # removed since the pass started: nothing to check
    check = check_version(store, version)
    if not check.ok:
        get_run_logger().warning("live check failed for project %s: %s", version.project_id, check.message)
        emit_event(
            event=CHECK_FAILED_EVENT,
            resource={
                "prefect.resource.id": f"pombolt.project.{version.project_id}",
                "pombolt.project.id": version.project_id,
                "pombolt.tenant.id": version.tenant_id,
                "pombolt.run.id": version.run_id,
            },
            payload={
                "phase": "verify",
                "url": version.live_url,
                "version": version.number,
                "message": check.message or "",
                "check_id": check.id,
            },
        )
    return check.ok


@flow(name="verify-live-sites", timeout_seconds=get_settings().timeouts.flow, log_prints=False)
def verify_live_sites() -> LiveCheckSummary:
    """Re-check the live URL of every project's latest version (index sha256 == its site snapshot's)."""
    versions = latest_versions(get_store())
    futures = [check_live_site.submit(v.id) for v in versions]
    oks = [f.result() for f in futures]
    failed = [v.project_id for v, ok in zip(versions, oks, strict=True) if not ok]
    return LiveCheckSummary(checked=len(versions), failed=failed)
