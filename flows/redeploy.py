"""Flow ``redeploy``: put an existing version's site back on the project's target — no generation, no build.

Thin: it queues a run that reuses a version's snapshot as is (the pipeline's rollback path skips generate,
check and store; build comes from cache) and runs the pipeline on it as a subflow, so the redeploy is
tracked, verified and recorded as a new version like any other run.
"""

from __future__ import annotations

from prefect import flow

from core.runtime import get_store
from core.settings import get_settings
from flows.pipeline import RunSummary, requirements_to_deployment
from usecases.iterate import create_redeploy_run


@flow(name="redeploy", timeout_seconds=get_settings().timeouts.flow, log_prints=False)
def redeploy(project_id: str, version: int | None = None) -> RunSummary:
    """Deploy version ``version`` (default: the latest) of a project to its target again and verify it.

    Raises:
        NotFound: When the project or the version does not exist.
        RunInProgress: When another change, rollback or redeploy of the project is in flight.
    """
    run = create_redeploy_run(get_store(), project_id, version)
    return requirements_to_deployment(run.id)
