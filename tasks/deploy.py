"""Phase ``deploy``: the target Block makes the live site equal the site snapshot, uploading only what it lacks."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from blocks.catalog import resolve_target
from blocks.targets.base import DeployRequest, DeployResult, SiteState
from core.settings import get_settings
from tasks.common import retry_options
from tasks.context import PhaseContext


@task(
    name="deploy",
    cache_policy=NO_CACHE,
    timeout_seconds=get_settings().timeouts.task_deploy,
    **retry_options(),
)
def deploy(run_id: str, tenant_id: str, project_id: str, site_snapshot_id: str, target_ref: str) -> DeployResult:
    """Deploy the site snapshot to the project's site (created on first use, reused after)."""
    ctx = PhaseContext(run_id)
    target = resolve_target(target_ref, tenant_id=tenant_id, store=ctx.store)
    state = SiteState.model_validate(ctx.project.target_state or {})
    request = DeployRequest(
        tenant_id=tenant_id,
        project_id=project_id,
        project_name=ctx.project.name,
        run_id=run_id,
        site_snapshot_id=site_snapshot_id,
    )
    result = target.deploy(ctx.snapshots, request, state)
    new_state = result.state.model_copy(
        update={"extra": {**result.state.extra, "live_snapshot": site_snapshot_id, "live_url": result.live_url}}
    )
    ctx.save_project_state(target_state=new_state.model_dump(mode="json"))
    return result.model_copy(update={"state": new_state})
