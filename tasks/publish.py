"""Phase ``publish``: the repository Block makes the branch equal the snapshot with at most one commit.

The project's repository state is the repository Block's own: it is stamped with the Block's identity
(:func:`blocks.base.block_identity`) and handed back only to that Block. A repository Block of another type, or
the same name saved again as another document, starts as for a new project — it never writes to a repository
it did not make for this project.
"""

from __future__ import annotations

from blocks.base import block_identity
from blocks.repositories.base import PublishRequest, PublishResult, RepositoryState
from core.settings import get_settings
from tasks._phase import PhaseContext, Reuse, phase_task


def head_unmoved(result: PublishResult, reuse: Reuse) -> bool:
    """Reuse test: a cached publish counts only while the branch still holds what it published.

    After a later run published another snapshot (a change, then a rollback to this one), the cached commit
    is not the head any more: publishing again makes the branch hold this snapshot with one new commit. The
    same holds when the project's repository state was made by another Block since.
    """
    state = RepositoryState.model_validate(reuse.project.repository_state or {})
    if state.head_snapshot is None:
        return True
    return state.head_snapshot == result.state.head_snapshot and state.block == result.state.block


@phase_task("publish", timeout=get_settings().timeouts.task_default, reuse_if=head_unmoved)
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
    target = ctx.repository(repository_ref)
    identity = block_identity(target, repository_ref)
    state = RepositoryState.for_block(ctx.project.repository_state, identity)
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
        update={"head": result.commit_sha, "head_snapshot": snapshot_id, "block": identity}
    )
    ctx.save_project_state(repository_state=new_state.model_dump(mode="json"))
    return result.model_copy(update={"state": new_state})
