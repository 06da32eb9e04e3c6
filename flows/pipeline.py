"""Flow ``requirements-to-deployment``: preflight → generate → check → store → publish → build → deploy → verify.

Thin by design: it resolves which Blocks the run uses, then runs one cached, retried task per phase
through :class:`flows.tracking.RunTracker`, which records every phase. Parameters carry the run id
only — never secrets, never requirement text.
"""

from __future__ import annotations

import hashlib
from typing import Any

from prefect import flow
from prefect.client.schemas.objects import FlowRun, State
from prefect.flows import Flow
from pydantic import BaseModel

from blocks.catalog import Kind, resolve
from blocks.generators.base import Generator, config_fingerprint
from core.concurrency import tenant_slot
from core.errors import BlobMissing, Cancelled
from core.models import Phase, RunKind, RunStatus
from core.runtime import get_snapshots, get_store
from core.settings import get_settings
from core.snapshots import SnapshotRef
from flows.compensation import compensate
from flows.tracking import RunTracker
from tasks.build import build
from tasks.check import check
from tasks.deploy import deploy
from tasks.generate import generate
from tasks.models import GenerationRef
from tasks.preflight import preflight
from tasks.publish import publish
from tasks.snapshot import store_snapshot
from tasks.verify import verify
from usecases.iterate import effective_kind


class RunSummary(BaseModel):
    """What the flow returns (ids and URLs only)."""

    run_id: str
    project_id: str
    status: str
    snapshot_id: str | None = None
    commit_sha: str | None = None
    repository_url: str | None = None
    live_url: str | None = None


def _fingerprints(tracker: RunTracker) -> tuple[dict[str, str], dict[str, str]]:
    project = tracker.project
    refs: dict[str, str] = {
        "generator": project.generator_ref,
        "repository": project.repository_ref,
        "target": project.target_ref,
    }
    prints: dict[str, str] = {}
    kinds: tuple[Kind, ...] = ("generator", "repository", "target")
    for kind in kinds:
        block = resolve(kind, refs[kind], tenant_id=project.tenant_id, store=tracker.store)
        if isinstance(block, Generator):
            prints[kind] = block.fingerprint()  # includes template and prompt digests
        else:
            prints[kind] = config_fingerprint(block) if block is not None else "none"
    return refs, prints


def _missing(tenant_id: str, snapshot_id: str) -> bool:
    try:
        return not get_snapshots(tenant_id).exists(snapshot_id)
    except BlobMissing:
        return True


def _generation_missing(tenant_id: str, generation_id: str) -> bool:
    """Whether a generation record a cached generate/check result points to is gone from storage."""
    snapshots = get_snapshots(tenant_id)
    return not snapshots.exists_key(snapshots.record_key("generations", generation_id))


def _fresh_if_lost(
    tracker: RunTracker, phase: Phase, task: Any, detail: Any, ref: GenerationRef, kwargs: dict[str, Any]
) -> GenerationRef:
    """Call a generate/check phase again, past its cache, when its cached result points to a record that is
    gone (storage partly deleted while the task results survived); re-running the pipeline could not heal it."""
    if tracker.timings[phase.value]["cached"] and _generation_missing(tracker.run.tenant_id, ref.generation_id):
        tracker.logger().warning("phase %s: cached generation %s is gone from storage; running it again",
                                 phase.value, ref.generation_id[:12])  # fmt: skip
        fresh: GenerationRef = tracker.call(phase, task.with_options(refresh_cache=True), detail=detail, **kwargs)
        return fresh
    return ref


def _base_snapshot(tracker: RunTracker) -> str | None:
    """The snapshot a change run builds on: the latest version's."""
    if effective_kind(tracker.run) != RunKind.change:
        return None
    versions = tracker.store.versions(tracker.project.id)
    return versions[-1].snapshot_id if versions else None


@flow(
    name="requirements-to-deployment",
    timeout_seconds=get_settings().timeouts.flow,
    log_prints=False,
    # a saved storage Block (POMBOLT_STORAGE_BLOCK, e.g. 's3-bucket/pombolt') also holds every task result, so
    # any worker resumes any run from cache; None keeps Prefect's default (the data dir, see core.runtime)
    result_storage=get_settings().storage_block or None,
    on_cancellation=[lambda flow, flow_run, state: _on_cancel(flow, flow_run, state)],
)
def requirements_to_deployment(run_id: str) -> RunSummary:
    """Turn a run's requirements into a verified live site, phase by phase (each phase cached on its own)."""
    tracker = RunTracker(run_id)
    with tenant_slot(tracker.run.tenant_id):  # fairness: a tenant's runs beyond its limit wait 'dispatched'
        tracker.start()
        try:
            return _phases(tracker)
        except BaseException:
            if tracker.project.cleanup_on_failure:
                compensate(tracker.store, tracker.store.reload(tracker.run), tracker.logger())
            raise


def _phases(tracker: RunTracker) -> RunSummary:
    run, project = tracker.run, tracker.project
    tenant = run.tenant_id
    refs, prints = _fingerprints(tracker)

    tracker.call(Phase.preflight, preflight, run_id=run.id, refs=refs, fingerprints=prints)

    if effective_kind(run) in (RunKind.rollback, RunKind.redeploy) and run.snapshot_id:
        snap = _rollback_snapshot(tracker, run.snapshot_id)
    else:
        snap = _generate_and_store(tracker, refs, prints)
    tracker.update(snapshot_id=snap.snapshot_id)

    if refs["repository"] == "none":
        tracker.skip(Phase.publish, "the project has no repository")
    else:
        head = (tracker.store.reload(project).repository_state or {}).get("extra", {}).get("head_snapshot")
        pub = tracker.call(
            Phase.publish,
            publish.with_options(refresh_cache=head not in (None, snap.snapshot_id)),
            detail=lambda p: {
                "commit": p.commit_sha,
                "committed": p.committed,
                "requests": p.requests,
                "writes": p.writes,
            },
            run_id=run.id,
            tenant_id=tenant,
            project_id=project.id,
            snapshot_id=snap.snapshot_id,
            repository_ref=refs["repository"],
            repository_fingerprint=prints["repository"],
        )
        tracker.update(repository_url=pub.repository_url, commit_sha=pub.commit_sha)

    site = tracker.call(
        Phase.build,
        build.with_options(refresh_cache=_missing(tenant, snap.snapshot_id)),
        detail=lambda s: {"files": s.file_count},
        run_id=run.id,
        tenant_id=tenant,
        snapshot_id=snap.snapshot_id,
    )
    tracker.update(site_snapshot_id=site.snapshot_id)
    dep = tracker.call(
        Phase.deploy,
        deploy,
        detail=lambda d: {"deploy_id": d.deploy_id, "uploaded": d.files_uploaded, "bytes": d.bytes_uploaded},
        run_id=run.id,
        tenant_id=tenant,
        project_id=project.id,
        site_snapshot_id=site.snapshot_id,
        target_ref=refs["target"],
    )
    tracker.update(deploy_id=dep.deploy_id, live_url=dep.live_url)
    tracker.call(
        Phase.verify,
        verify,
        detail=lambda v: {"attempts": v.attempts},
        run_id=run.id,
        tenant_id=tenant,
        site_snapshot_id=site.snapshot_id,
        url=dep.live_url,
    )
    final = tracker.verified()
    tracker.links()
    return RunSummary(
        run_id=final.id,
        project_id=final.project_id,
        status=final.status,
        snapshot_id=final.snapshot_id,
        commit_sha=final.commit_sha,
        repository_url=final.repository_url,
        live_url=final.live_url,
    )


def _generate_and_store(tracker: RunTracker, refs: dict[str, str], prints: dict[str, str]) -> SnapshotRef:
    """Phases generate, check and store (a change run builds on the latest version's snapshot)."""
    run = tracker.run
    tenant = run.tenant_id
    base = _base_snapshot(tracker)
    text = run.details.get("combined_requirements", run.requirements) + ("\x00" + run.requirements if base else "")
    gen_detail = lambda g: {"files": g.file_count, "label": g.label, **g.usage.model_dump()}  # noqa: E731
    gen_args: dict[str, Any] = {
        "run_id": run.id,
        "tenant_id": tenant,
        "input_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "generator_ref": refs["generator"],
        "generator_fingerprint": prints["generator"],
        "base_snapshot_id": base,
    }
    gen = tracker.call(Phase.generate, generate, detail=gen_detail, **gen_args)
    gen = _fresh_if_lost(tracker, Phase.generate, generate, gen_detail, gen, gen_args)
    if tracker.timings["generate"]["cached"] is False:
        _spend(tracker, gen)
    check_detail = lambda g: {"repair_rounds": g.repair_rounds, **g.usage.model_dump()}  # noqa: E731
    check_args: dict[str, Any] = {
        "run_id": run.id,
        "tenant_id": tenant,
        "generation_id": gen.generation_id,
        "generator_ref": refs["generator"],
        "generator_fingerprint": prints["generator"],
    }
    checked = tracker.call(Phase.check, check, detail=check_detail, **check_args)
    checked = _fresh_if_lost(tracker, Phase.check, check, check_detail, checked, check_args)
    if tracker.timings["check"]["cached"] is False:
        _spend(tracker, checked)
    snap: SnapshotRef = tracker.call(
        Phase.store,
        store_snapshot.with_options(refresh_cache=_missing(tenant, checked.snapshot_id)),
        detail=lambda s: {"files": s.file_count, "bytes": s.total_bytes, "blobs_written": s.blobs_written},
        run_id=run.id,
        tenant_id=tenant,
        generation_id=checked.generation_id,
    )
    return snap


def _rollback_snapshot(tracker: RunTracker, snapshot_id: str) -> SnapshotRef:
    """A rollback reuses a version's snapshot as is: nothing is generated, checked or stored again."""
    manifest = get_snapshots(tracker.run.tenant_id).manifest(snapshot_id)
    for phase in (Phase.generate, Phase.check, Phase.store):
        tracker.skip(phase, f"rollback to version {tracker.run.details.get('rollback_to')}: snapshot reused")
    return SnapshotRef(snapshot_id=snapshot_id, file_count=len(manifest.files), total_bytes=manifest.total_bytes)


def _spend(tracker: RunTracker, gen: Any) -> None:
    usage = gen.usage
    if usage.calls or usage.prompt_tokens or usage.completion_tokens:
        run = tracker.store.reload(tracker.run)
        tracker.update(
            llm_calls=run.llm_calls + usage.calls,
            prompt_tokens=run.prompt_tokens + usage.prompt_tokens,
            completion_tokens=run.completion_tokens + usage.completion_tokens,
        )


def _on_cancel(flow: Flow[Any, Any], flow_run: FlowRun, state: State[Any]) -> None:
    """Prefect cancellation hook: mark the run cancelled and remove what it created."""
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
