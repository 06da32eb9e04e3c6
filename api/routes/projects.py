"""Projects of the calling tenant: list, show, files, versions, retry, cancel, changes, rollback."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status

from api.deps import CurrentTenant, StateDep
from api.links import flow_run_url, prefect_ui_base, status_url
from api.schemas import (
    Accepted,
    CancelOut,
    ChangeIn,
    ErrorOut,
    FileOut,
    FilesOut,
    PhaseOut,
    ProjectOut,
    ProjectPage,
    ProjectSummary,
    RollbackIn,
    RunOut,
    SpendOut,
    VersionOut,
)
from core.errors import Cancelled, ConcurrentUpdate, IllegalTransition, NotFound
from core.models import TERMINAL, Project, Run, RunStatus
from core.settings import get_settings
from core.store import Store
from usecases.iterate import create_change_run, create_retry_run, create_rollback_run

router = APIRouter(prefix="/api/projects", tags=["projects"])


def _project(store: Store, project_id: str, tenant_id: str) -> Project:
    """The tenant's project.

    Raises:
        NotFound: The same for a missing project and another tenant's (the store's hint for the CLI left out).
    """
    try:
        return store.get_project(project_id, tenant_id)
    except NotFound as exc:
        raise NotFound(f"no project {project_id!r}") from exc


def run_out(store: Store, run: Run, ui_base: str | None) -> RunOut:
    """A run as the API shows it."""
    phases = [
        PhaseOut(
            name=p.phase.value,
            status=p.status.value,
            cached=p.cached,
            started_at=p.started_at,
            ended_at=p.ended_at,
            seconds=round((p.ended_at - p.started_at).total_seconds(), 3) if p.ended_at else None,
        )
        for p in store.phases(run.id)
    ]
    error = (
        ErrorOut(phase=run.error_phase, code=run.error_code, message=run.error_message, retryable=run.error_retryable)
        if run.error_code
        else None
    )
    return RunOut(
        id=run.id,
        kind=run.kind.value,
        status=run.status.value,
        phase=run.phase.value if run.phase else None,
        requirements=run.requirements,
        request_id=run.request_id,
        created_at=run.created_at,
        finished_at=run.finished_at,
        phases=phases,
        repository_url=run.repository_url,
        commit_sha=run.commit_sha,
        live_url=run.live_url,
        flow_run_id=run.flow_run_id,
        prefect_url=flow_run_url(ui_base, run.flow_run_id),
        spend=SpendOut(
            llm_calls=run.llm_calls, prompt_tokens=run.prompt_tokens, completion_tokens=run.completion_tokens
        ),
        error=error,
    )


def _summary(store: Store, project: Project) -> ProjectSummary:
    latest = store.latest_run(project.id)
    versions = store.versions(project.id)
    return ProjectSummary(
        id=project.id,
        name=project.name,
        status=latest.status.value if latest else None,
        created_at=project.created_at,
        live_url=versions[-1].live_url if versions else None,
    )


@router.get("", response_model=ProjectPage)
def list_projects(
    tenant: CurrentTenant,
    state: StateDep,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    status_filter: Annotated[RunStatus | None, Query(alias="status")] = None,
) -> ProjectPage:
    """A page of the tenant's projects, newest first; ``status`` keeps those whose latest run has it."""
    rows = state.store.list_projects_with_status(tenant.id, status=status_filter, offset=offset, limit=limit)
    return ProjectPage(items=[_summary(state.store, p) for p in rows], offset=offset, limit=limit)


@router.get("/{project_id}", response_model=ProjectOut, name="get_project")
def get_project(project_id: str, tenant: CurrentTenant, state: StateDep) -> ProjectOut:
    """A project: its latest run (phases, links, spend, error) and its versions."""
    store = state.store
    project = _project(store, project_id, tenant.id)
    latest = store.latest_run(project.id)
    versions = store.versions(project.id)
    ui = prefect_ui_base(state.api.prefect_ui_url)
    return ProjectOut(
        **_summary(store, project).model_dump(),
        generator=project.generator_ref,
        repository=project.repository_ref,
        target=project.target_ref,
        repository_url=(latest.repository_url if latest else None) or (project.repository_state or {}).get("url"),
        latest_run=run_out(store, latest, ui) if latest else None,
        versions=[
            VersionOut(
                number=v.number,
                run_id=v.run_id,
                snapshot_id=v.snapshot_id,
                commit_sha=v.commit_sha,
                live_url=v.live_url,
                created_at=v.created_at,
            )
            for v in versions
        ],
    )


@router.get("/{project_id}/files", response_model=FilesOut)
def get_files(project_id: str, tenant: CurrentTenant, state: StateDep) -> FilesOut:
    """The file manifest of the project's latest stored snapshot."""
    store = state.store
    project = _project(store, project_id, tenant.id)
    snapshot_id = next((r.snapshot_id for r in reversed(store.runs(project.id)) if r.snapshot_id), None)
    if snapshot_id is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail="the project has no stored snapshot yet; wait for its run"
        )
    from core.runtime import get_snapshots

    manifest = get_snapshots(tenant.id, state.settings).manifest(snapshot_id)
    return FilesOut(
        snapshot_id=snapshot_id,
        files=[FileOut(path=e.path, sha256=e.sha256, size=e.size, mode=e.mode) for e in manifest.files],
    )


@router.post("/{project_id}/retry", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
def retry(project_id: str, tenant: CurrentTenant, state: StateDep, request: Request) -> Accepted:
    """Start a new run with the latest run's requirements; finished phases come from cache."""
    store = state.store
    project = _project(store, project_id, tenant.id)
    run = create_retry_run(store, project)
    state.notify_dispatcher()
    return Accepted(
        project_id=project.id,
        run_id=run.id,
        status=run.status.value,
        status_url=status_url(request, project.id),
    )


@router.post("/{project_id}/cancel", response_model=CancelOut)
def cancel(project_id: str, tenant: CurrentTenant, state: StateDep) -> CancelOut:
    """Cancel the latest run: a queued one at once; a dispatched or running one through Prefect."""
    store = state.store
    project = _project(store, project_id, tenant.id)
    run = store.latest_run(project.id)
    if run is None or run.status in TERMINAL:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="the project has no unfinished run to cancel")
    if run.flow_run_id:
        _cancel_flow_run(run.flow_run_id)
    if run.status in (RunStatus.queued, RunStatus.dispatched):
        try:
            run = store.transition(run, RunStatus.cancelled, error_code=Cancelled.code, error_message="cancelled")
        except (ConcurrentUpdate, IllegalTransition):
            run = store.reload(run)  # it moved on meanwhile (e.g. just dispatched); cancel it in Prefect then
            if run.flow_run_id and run.status not in TERMINAL:
                _cancel_flow_run(run.flow_run_id)
    return CancelOut(run_id=run.id, status=run.status.value if run.status in TERMINAL else "cancelling")


def _cancel_flow_run(flow_run_id: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    try:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(flow_run_id, Cancelling(), force=True)
    except Exception as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail=f"Prefect did not accept the cancellation ({type(exc).__name__}); try again shortly",
            headers={"Retry-After": "5"},
        ) from exc


@router.get("/{project_id}/versions", response_model=list[VersionOut])
def versions(project_id: str, tenant: CurrentTenant, state: StateDep) -> list[VersionOut]:
    """Every version of the project, oldest first."""
    project = _project(state.store, project_id, tenant.id)
    return [
        VersionOut(
            number=v.number,
            run_id=v.run_id,
            snapshot_id=v.snapshot_id,
            commit_sha=v.commit_sha,
            live_url=v.live_url,
            created_at=v.created_at,
        )
        for v in state.store.versions(project.id)
    ]


@router.post("/{project_id}/changes", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
def changes(project_id: str, body: ChangeIn, tenant: CurrentTenant, state: StateDep, request: Request) -> Accepted:
    """Change the live app: one new commit on the same repository, an incremental deploy to the same site."""
    store = state.store
    project = _project(store, project_id, tenant.id)
    run = create_change_run(store, project, body.request, get_settings())
    state.notify_dispatcher()
    return Accepted(
        project_id=project.id,
        run_id=run.id,
        status=run.status.value,
        status_url=status_url(request, project.id),
    )


@router.post("/{project_id}/rollback", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
def rollback(project_id: str, body: RollbackIn, tenant: CurrentTenant, state: StateDep, request: Request) -> Accepted:
    """Put an earlier version live again: no LLM call, no build, only differing files uploaded."""
    store = state.store
    project = _project(store, project_id, tenant.id)
    run = create_rollback_run(store, project, body.version)
    state.notify_dispatcher()
    return Accepted(
        project_id=project.id,
        run_id=run.id,
        status=run.status.value,
        status_url=status_url(request, project.id),
    )
