"""Flow ``requirements-to-deployment``: preflight → generate → check → store → publish → build → deploy → verify.

Orchestration only: it runs one cached, retried task per phase through :class:`flows.tracking.RunTracker`,
which records every phase, and hands each phase's result to the next. It reads no storage and no database
itself: tasks load what they work on from ids, and each result carries what the next phase needs.

The run's Blocks are resolved once for the whole flow run (:class:`tasks._phase.RunBlocks`): their
fingerprints are part of the cache keys, and every phase task running here uses those same Blocks.
Parameters carry the run id only — never secrets, never requirement text.
"""

from __future__ import annotations

import hashlib

from prefect import flow
from pydantic import BaseModel

from blocks.catalog import NO_REPOSITORY
from core.concurrency import tenant_slot
from core.errors import PomBoltError
from core.models import Phase, RunKind
from core.settings import get_settings
from flows.compensation import compensate, on_cancel
from flows.tracking import RunTracker
from tasks._phase import BlockRefs, RunBlocks, sharing
from tasks.build import build
from tasks.check import check
from tasks.deploy import deploy
from tasks.generate import generate
from tasks.models import BaseVersion, GenerationRef, SiteRef
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


@flow(
    name="requirements-to-deployment",
    timeout_seconds=get_settings().timeouts.flow,
    log_prints=False,
    # a saved storage Block (POMBOLT_STORAGE_BLOCK, e.g. 's3-bucket/pombolt') also holds every task result, so
    # any worker resumes any run from cache; None keeps Prefect's default (the data dir, see core.runtime)
    result_storage=get_settings().storage_block or None,
    on_cancellation=[on_cancel],
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
                compensate(tracker.store, tracker.run, tracker.logger())
            raise


def _phases(tracker: RunTracker) -> RunSummary:
    blocks = RunBlocks(tracker.run, BlockRefs.of(tracker.project), tracker.store)
    try:
        prints = blocks.fingerprints()  # resolves each Block, once for the whole run
    except PomBoltError as exc:
        tracker.fail(Phase.preflight, exc)
        raise
    run = tracker.run
    with sharing(blocks):
        tracker.call(Phase.preflight, preflight, run_id=run.id, refs=blocks.refs.model_dump(), fingerprints=prints)
        snapshot_id = _source(tracker, blocks.refs, prints)
        tracker.update(snapshot_id=snapshot_id)
        _publish(tracker, blocks.refs, prints, snapshot_id)
        site: SiteRef = tracker.call(
            Phase.build,
            build,
            detail=lambda s: {"files": s.file_count, "built": s.built},
            run_id=run.id,
            tenant_id=run.tenant_id,
            snapshot_id=snapshot_id,
        )
        tracker.update(site_snapshot_id=site.snapshot_id)
        _deploy_and_verify(tracker, blocks.refs, site)
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


def _source(tracker: RunTracker, refs: BlockRefs, prints: dict[str, str]) -> str:
    """The snapshot this run puts live: generated, checked and stored — or, for a rollback, a version's as is."""
    run = tracker.run
    if effective_kind(run) in (RunKind.rollback, RunKind.redeploy) and run.snapshot_id:
        for phase in (Phase.generate, Phase.check, Phase.store):
            tracker.skip(phase, f"rollback to version {run.info().rollback_to}: snapshot reused")
        return run.snapshot_id  # publish and build read it (and say so if it is gone)
    base = None
    if effective_kind(run) == RunKind.change and run.base_version is not None:
        base = BaseVersion(project_id=run.project_id, number=run.base_version)
    text = run.info().requirements(run) + ("\x00" + run.requirements if base else "")
    gen_args = {"generator_ref": refs.generator, "generator_fingerprint": prints["generator"]}
    gen: GenerationRef = tracker.call(
        Phase.generate,
        generate,
        detail=lambda g: {"files": g.file_count, "label": g.label, **g.usage.model_dump()},
        run_id=run.id,
        tenant_id=run.tenant_id,
        input_sha256=hashlib.sha256(text.encode()).hexdigest(),
        base=base,
        **gen_args,
    )
    checked: GenerationRef = tracker.call(
        Phase.check,
        check,
        detail=lambda g: {"repair_rounds": g.repair_rounds, **g.usage.model_dump()},
        run_id=run.id,
        tenant_id=run.tenant_id,
        generation_id=gen.generation_id,
        **gen_args,
    )
    stored = tracker.call(
        Phase.store,
        store_snapshot,
        detail=lambda s: {"files": s.file_count, "bytes": s.total_bytes, "blobs_written": s.blobs_written},
        run_id=run.id,
        tenant_id=run.tenant_id,
        generation_id=checked.generation_id,
    )
    return str(stored.snapshot_id)


def _publish(tracker: RunTracker, refs: BlockRefs, prints: dict[str, str], snapshot_id: str) -> None:
    if refs.repository == NO_REPOSITORY:
        tracker.skip(Phase.publish, "the project has no repository")
        return
    run = tracker.run
    pub = tracker.call(
        Phase.publish,
        publish,
        detail=lambda p: {"commit": p.commit_sha, "committed": p.committed, "requests": p.requests, "writes": p.writes},
        run_id=run.id,
        tenant_id=run.tenant_id,
        project_id=run.project_id,
        snapshot_id=snapshot_id,
        repository_ref=refs.repository,
        repository_fingerprint=prints["repository"],
    )
    tracker.update(repository_url=pub.repository_url, commit_sha=pub.commit_sha)


def _deploy_and_verify(tracker: RunTracker, refs: BlockRefs, site: SiteRef) -> None:
    run = tracker.run
    dep = tracker.call(
        Phase.deploy,
        deploy,
        detail=lambda d: {"deploy_id": d.deploy_id, "uploaded": d.files_uploaded, "bytes": d.bytes_uploaded},
        run_id=run.id,
        tenant_id=run.tenant_id,
        project_id=run.project_id,
        site_snapshot_id=site.snapshot_id,
        target_ref=refs.target,
    )
    tracker.update(deploy_id=dep.deploy_id, live_url=dep.live_url)
    tracker.call(
        Phase.verify,
        verify,
        detail=lambda v: {"attempts": v.attempts},
        run_id=run.id,
        tenant_id=run.tenant_id,
        url=dep.live_url,
        index_sha256=site.index_sha256,
    )
