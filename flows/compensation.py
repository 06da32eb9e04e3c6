"""Compensation: remove what a run created remotely — only on cancel or when the project asked for it.

An ordinary failure never triggers this: a retry run must be able to finish on top of what exists.
Only resources whose state says ``created_by_run == run.id`` are removed, so an earlier run's
repository or site is never touched.
"""

from __future__ import annotations

import logging
from typing import Any

from prefect.client.schemas.objects import FlowRun, State
from prefect.flows import Flow

from blocks.base import block_identity
from blocks.catalog import resolve
from blocks.repositories.base import RepositoryState, RepositoryTarget
from blocks.targets.base import DeploymentTarget, SiteState
from core.errors import Cancelled, PomBoltError
from core.models import Run, RunStatus
from core.runtime import get_store
from core.store import Store

log = logging.getLogger("pombolt.compensation")


def compensate(store: Store, run: Run, logger: Any | None) -> list[str]:
    """Delete the repository and site this run created; return what was removed."""
    logger = logger or log
    project = store.get_project(run.project_id)
    removed: list[str] = []
    repo_state = RepositoryState.model_validate(project.repository_state or {})
    if repo_state.created_by_run == run.id:
        block = resolve("repository", project.repository_ref, tenant_id=run.tenant_id, store=store)
        # only the Block that made the repository removes it (not one saved since under that name as another type)
        if isinstance(block, RepositoryTarget) and repo_state.made_by(block_identity(block, project.repository_ref)):
            try:
                block.remove(repo_state)
                store.update(store.reload(project), repository_state={})
                removed.append(f"repository {repo_state.url}")
            except (PomBoltError, NotImplementedError) as exc:
                logger.warning("could not remove repository %s: %s", repo_state.url, exc)
    project = store.reload(project)
    site_state = SiteState.model_validate(project.target_state or {})
    if site_state.created_by_run == run.id:
        block = resolve("target", project.target_ref, tenant_id=run.tenant_id, store=store)
        if isinstance(block, DeploymentTarget) and site_state.made_by(block_identity(block, project.target_ref)):
            try:
                block.remove(site_state)
                store.update(store.reload(project), target_state={})
                removed.append(f"site {site_state.url}")
            except (PomBoltError, NotImplementedError) as exc:
                logger.warning("could not remove site %s: %s", site_state.url, exc)
    for item in removed:
        logger.info("compensation removed %s created by run %s", item, run.id)
    return removed


def on_cancel(flow: Flow[Any, Any], flow_run: FlowRun, state: State[Any]) -> None:
    """Prefect cancellation hook of the pipeline: mark the run cancelled and remove what it created."""
    run_id = str(flow_run.parameters.get("run_id", ""))
    if not run_id:
        return
    store = get_store()
    run = store.get_run(run_id)
    if run.status in (RunStatus.queued, RunStatus.dispatched, RunStatus.running):
        run = store.transition(
            run, RunStatus.cancelled, error_code=Cancelled.code, error_message="the run was cancelled"
        )
    compensate(store, run, None)
