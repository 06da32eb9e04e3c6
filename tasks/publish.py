"""Phase ``publish``: the repository Block makes the branch equal the snapshot with at most one commit."""

from __future__ import annotations

from prefect import task

from blocks.catalog import resolve_repository
from blocks.repositories.base import PublishRequest, PublishResult, RepositoryState
from core.settings import get_settings
from tasks.common import PhaseKey, retry_options
from tasks.context import PhaseContext


@task(
    name="publish",
    cache_policy=PhaseKey(),
    timeout_seconds=get_settings().timeouts.task_default,
    **retry_options(),
)
def publish(
    run_id: str,
    tenant_id: str,
    project_id: str,
    snapshot_id: str,
    repository_ref: str,
    repository_fingerprint: str,
) -> PublishResult:
    """Commit the snapshot to the project's repository (created on first use, reused after)."""
    ctx = PhaseContext(run_id)
    target = resolve_repository(repository_ref, tenant_id=tenant_id, store=ctx.store)
    state = RepositoryState.model_validate(ctx.project.repository_state or {})
    request = PublishRequest(
        tenant_id=tenant_id,
        project_id=project_id,
        project_name=ctx.project.name,
        run_id=run_id,
        snapshot_id=snapshot_id,
        message=f"Pom-Bolt {ctx.run.kind}: snapshot {snapshot_id[:12]}",
    )
    result = target.publish(ctx.snapshots, request, state)
    new_state = result.state.model_copy(
        update={"extra": {**result.state.extra, "head": result.commit_sha, "head_snapshot": snapshot_id}}
    )
    ctx.save_project_state(repository_state=new_state.model_dump(mode="json"))
    return result.model_copy(update={"state": new_state})
