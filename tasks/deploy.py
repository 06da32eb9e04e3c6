"""Phase ``deploy``: the target Block makes the live site equal the site snapshot, uploading only what it lacks.

The project's site state is the target Block's own: it is stamped with the Block's identity
(:func:`blocks.base.block_identity`) and handed back only to that Block. A target of another type, or the same
name saved again as another document, starts as for a new project — it never touches a site it did not make.
"""

from __future__ import annotations

from blocks.base import block_identity
from blocks.targets.base import DeployRequest, DeployResult, SiteState
from core.settings import get_settings
from tasks._phase import PhaseContext, phase_task


@phase_task("deploy", timeout=get_settings().timeouts.task_deploy, cache=False)
def deploy(run_id: str, tenant_id: str, project_id: str, site_snapshot_id: str, target_ref: str) -> DeployResult:
    """Deploy the site snapshot to the project's site (created on first use, reused after); never cached."""
    ctx = PhaseContext(run_id)
    target = ctx.target(target_ref)
    identity = block_identity(target, target_ref)
    state = SiteState.for_block(ctx.project.target_state, identity)
    request = DeployRequest(
        tenant_id=tenant_id,
        project_id=project_id,
        project_name=ctx.project.name,
        run_id=run_id,
        site_snapshot_id=site_snapshot_id,
    )
    result = target.deploy(ctx.snapshots, request, state)
    new_state = result.state.model_copy(
        update={"live_snapshot": site_snapshot_id, "live_url": result.live_url, "block": identity}
    )
    ctx.save_project_state(target_state=new_state.model_dump(mode="json"))
    return result.model_copy(update={"state": new_state})
