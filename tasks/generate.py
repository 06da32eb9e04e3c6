"""Phase ``generate``: the generator Block turns requirements into files, validated by the path rules."""

from __future__ import annotations

import hashlib

from prefect import task

from blocks.generators.base import GenerationRequest
from blocks.registry import resolve_generator
from core.files import GeneratedFile, validate_files
from core.settings import get_settings
from core.snapshots import Manifest, SnapshotStore
from tasks.common import PhaseKey, retry_options
from tasks.context import PhaseContext
from tasks.models import GenerationRecord, GenerationRef


def save_generation(snapshots: SnapshotStore, record: GenerationRecord) -> GenerationRef:
    """Store a generation record under its content hash and return a reference to it."""
    body = record.model_dump_json().encode()
    gid = hashlib.sha256(body).hexdigest()
    snapshots.put_record("generations", gid, record)
    manifest = Manifest.of(record.files)
    return GenerationRef(
        generation_id=gid,
        snapshot_id=manifest.snapshot_id,
        file_count=len(record.files),
        total_bytes=manifest.total_bytes,
        usage=record.usage,
        label=record.label,
        repair_rounds=record.repair_rounds,
    )


def load_generation(snapshots: SnapshotStore, generation_id: str) -> GenerationRecord:
    """Read a stored generation record."""
    record: GenerationRecord = snapshots.get_record("generations", generation_id, GenerationRecord)
    return record


def merge_change(base: list[GeneratedFile], changed: list[GeneratedFile], deleted: list[str]) -> list[GeneratedFile]:
    """Apply a change generation (changed files, deleted paths) on top of a base tree."""
    tree = {f.path: f for f in base}
    for path in deleted:
        tree.pop(path, None)
    tree.update({f.path: f for f in changed})
    return list(tree.values())


@task(
    name="generate",
    cache_policy=PhaseKey(),
    timeout_seconds=get_settings().timeouts.task_generate,
    **retry_options(),
)
def generate(
    run_id: str,
    tenant_id: str,
    input_sha256: str,
    generator_ref: str,
    generator_fingerprint: str,
    base_snapshot_id: str | None = None,
) -> GenerationRef:
    """Generate the project's files (cached on requirements, generator config and base snapshot)."""
    ctx = PhaseContext(run_id)
    settings = get_settings()
    generator = resolve_generator(generator_ref, tenant_id=tenant_id, store=ctx.store)
    base = ctx.snapshots.files(base_snapshot_id) if base_snapshot_id else []
    request = GenerationRequest(
        requirements=ctx.run.details.get("base_requirements", ctx.run.requirements),
        project_name=ctx.project.name,
        change_request=ctx.run.requirements if base_snapshot_id else None,
        current_files=base,
    )
    result = generator.generate(request)
    files = merge_change(base, result.files, result.deleted) if base_snapshot_id else result.files
    files = validate_files(files, limits=settings.limits, allow_workflows=ctx.project.allow_workflows)
    return save_generation(ctx.snapshots, GenerationRecord(files=files, usage=result.usage, label=result.label))
