"""Rows the store tests build on: a tenant's project, a queued run, a run ready to become a version."""

from __future__ import annotations

from core.models import Project, Run, RunStatus
from core.store import Store


def make_project(store: Store, tenant_id: str = "t1", name: str = "shop", target_ref: str = "local-static") -> Project:
    store.ensure_tenant(tenant_id)
    return store.create_project(
        Project(
            tenant_id=tenant_id,
            name=name,
            generator_ref="offline",
            repository_ref="local-git",
            target_ref=target_ref,
        )
    )


def make_run(store: Store, tenant_id: str = "t1", name: str = "shop") -> Run:
    """A queued run of a new project ``name``."""
    return store.create_run(make_project(store, tenant_id, name), "a todo app with dark mode")


# A legal way to reach every status from `queued`.
PATH_TO: dict[RunStatus, list[RunStatus]] = {
    RunStatus.queued: [],
    RunStatus.dispatched: [RunStatus.dispatched],
    RunStatus.running: [RunStatus.dispatched, RunStatus.running],
    RunStatus.verified: [RunStatus.dispatched, RunStatus.running, RunStatus.verified],
    RunStatus.failed: [RunStatus.dispatched, RunStatus.running, RunStatus.failed],
    RunStatus.cancelled: [RunStatus.dispatched, RunStatus.cancelled],
}


def move(store: Store, run: Run, status: RunStatus) -> Run:
    """Walk a queued run to ``status`` through legal transitions."""
    for step in PATH_TO[status]:
        run = store.transition(run, step)
    assert run.status == status
    return run


def verified_run(store: Store, project: Project, n: int) -> Run:
    """A run of ``project`` carrying what a version needs (snapshots, commit, live URL), numbered ``n``."""
    run = store.create_run(project, f"v{n}")
    return store.update(
        run,
        snapshot_id=f"{n:064x}",
        site_snapshot_id=f"{n + 100:064x}",
        live_url=f"http://127.0.0.1:1/{n}/",
        commit_sha=f"{n:040x}",
    )
