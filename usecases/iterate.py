"""Iterating on a live app: change runs on top of the latest version, rollbacks to an earlier one.

A change run hands the generator the live version's files and the change request; a rollback run
reuses an earlier version's snapshot as is — no generation, no build — and the pipeline commits a tree
restore (never a force-push) and redeploys only the files that differ. Both become new versions.
"""

from __future__ import annotations

from core.errors import ConcurrentUpdate, NoLiveVersion, NotFound, RunInProgress
from core.models import TERMINAL, Project, Run, RunDetails, RunKind, Version
from core.settings import Settings
from core.store import Store
from usecases.submit import clean_requirements


def _requirements_of(store: Store, version: Version) -> str:
    run = store.get_run(version.run_id)
    return run.info().requirements(run)


def _claim(store: Store, project: Project, run_id: str) -> None:
    """Serialise iterations: mark the project as having ``run_id`` in flight (OCC on the project row).

    Raises:
        RunInProgress: When another change or rollback is in flight, or won a race for the project.
    """
    project = store.reload(project)
    if project.iteration_run_id:
        other = store.get_run(project.iteration_run_id)
        if other.status not in TERMINAL:
            raise RunInProgress(
                f"project {project.name!r} already has a {other.kind} run ({other.id[:12]}, {other.status}); "
                "wait for it to finish, then send this one again"
            )
    try:
        store.update(project, iteration_run_id=run_id)
    except ConcurrentUpdate as exc:
        raise RunInProgress(
            f"another change to project {project.name!r} was accepted at the same moment; send this one again "
            "when it has finished"
        ) from exc


def _queue(store: Store, project: Project, run: Run) -> Run:
    _claim(store, project, run.id)
    return store.add_run(run)


def create_change_run(store: Store, project: Project, request: str, settings: Settings) -> Run:
    """Queue a change run on top of the project's latest version.

    Raises:
        NoLiveVersion: When the project has no live version to change.
        RunInProgress: When another change or rollback is still running.
    """
    text = clean_requirements(request, settings)
    versions = store.versions(project.id)
    if not versions:
        raise NoLiveVersion(
            f"project {project.name!r} has no live version to change yet; wait for its first run to be verified "
            "(or retry it if it failed), then send the change again"
        )
    base = versions[-1]
    base_text = _requirements_of(store, base)
    run = Run(
        tenant_id=project.tenant_id,
        project_id=project.id,
        kind=RunKind.change,
        requirements=text,
        base_version=base.number,
        details=RunDetails(base_requirements=base_text, combined_requirements=f"{base_text}\n{text}").as_json(),
    )
    return _queue(store, project, run)


def create_rollback_run(store: Store, project: Project, number: int, *, redeploy: bool = False) -> Run:
    """Queue a rollback to version ``number`` (itself recorded as a new version when verified).

    Args:
        store: The state store.
        project: The project.
        number: The version to put back.
        redeploy: Whether flow ``redeploy`` asks for it (recorded in the run's details).

    Raises:
        NotFound: When the version does not exist.
        RunInProgress: When another change or rollback is still running.
    """
    versions = {v.number: v for v in store.versions(project.id)}
    version = versions.get(number)
    if version is None:
        known = ", ".join(str(n) for n in sorted(versions)) or "none yet"
        raise NotFound(f"project {project.name!r} has no version {number}; versions: {known}")
    run = Run(
        tenant_id=project.tenant_id,
        project_id=project.id,
        kind=RunKind.rollback,
        requirements=f"rollback to version {number}",
        base_version=number,
        snapshot_id=version.snapshot_id,
        details=RunDetails(
            combined_requirements=_requirements_of(store, version), rollback_to=number, redeploy=redeploy
        ).as_json(),
    )
    return _queue(store, project, run)


def create_redeploy_run(store: Store, project_id: str, version: int | None = None) -> Run:
    """Queue a redeploy of version ``version`` (default: the latest): a rollback run that flow ``redeploy`` made.

    Raises:
        NotFound: When the project or the version does not exist, or the project has no version yet.
        RunInProgress: When another change, rollback or redeploy of the project is in flight.
    """
    project = store.get_project(project_id)
    versions = store.versions(project.id)
    if not versions:
        raise NotFound(f"project {project.name!r} has no version to redeploy yet; run it first")
    number = version if version is not None else versions[-1].number
    return create_rollback_run(store, project, number, redeploy=True)


def effective_kind(run: Run) -> RunKind:
    """What a run does: a retry run does what the run it retries did (create, change or rollback)."""
    if run.kind == RunKind.retry:
        return run.info().effective_kind or RunKind.create
    return run.kind


def create_retry_run(store: Store, project: Project) -> Run:
    """Queue a retry of the project's latest run; its finished phases come from cache.

    Raises:
        NotFound: When the project has no run yet.
        RunInProgress: When the latest run has not ended.
    """
    latest = store.latest_run(project.id)
    if latest is None:
        raise NotFound(f"project {project.name!r} has no run to retry; submit requirements first")
    if latest.status not in TERMINAL:
        raise RunInProgress(
            f"the latest run of {project.name!r} is still {latest.status}; cancel it or wait until it ends, then retry"
        )
    run = Run(
        tenant_id=project.tenant_id,
        project_id=project.id,
        kind=RunKind.retry,
        requirements=latest.requirements,
        parent_run_id=latest.id,
        base_version=latest.base_version,
        snapshot_id=latest.snapshot_id if effective_kind(latest) == RunKind.rollback else None,
        details=latest.info().model_copy(update={"effective_kind": effective_kind(latest)}).as_json(),
    )
    if effective_kind(latest) in (RunKind.change, RunKind.rollback):
        return _queue(store, project, run)
    return store.add_run(run)
