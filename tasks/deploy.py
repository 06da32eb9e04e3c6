"""Phase ``deploy``: the target Block makes the live site equal the site snapshot, uploading only what it lacks."""

from __future__ import annotations

from blocks.targets.base import DeployRequest, DeployResult, SiteState
from core.settings import get_settings
from tasks._phase import PhaseContext, phase_task


@phase_task("deploy", timeout=get_settings().timeouts.task_deploy, cache=False)
def deploy(run_id: str, tenant_id: str, project_id: str, site_snapshot_id: str, target_ref: str) -> DeployResult:
    """Deploy the site snapshot to the project's site (created on first use, reused after); never cached."""
    ctx = PhaseContext(run_id)
    target = ctx.target(target_ref)
    state = SiteState.model_validate(ctx.project.target_state or {})
    request = DeployRequest(
        tenant_id=tenant_id,
        project_id=project_id,
        project_name=ctx.project.name,
        run_id=run_id,
        site_snapshot_id=site_snapshot_id,
    )
    result = target.deploy(ctx.snapshots, request, state)
    new_state = result.state.model_copy(update={"live_snapshot": site_snapshot_id, "live_url": result.live_url})
    ctx.save_project_state(target_state=new_state.model_dump(mode="json"))
    return result.model_copy(update={"state": new_state})
