"""Phase ``generate``: the generator Block turns requirements into files, validated by the path rules."""

from __future__ import annotations

import hashlib
import threading
from typing import Any, Protocol, runtime_checkable

from prefect import task, unmapped
from pydantic import BaseModel, Field
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from blocks.catalog import resolve_generator
from blocks.generators.base import GenerationRequest, GenerationResult, Generator, Usage
from blocks.generators.wire import WirePlan
from core.errors import ConcurrentUpdate, ConfigError, PathRuleViolation
from core.files import GeneratedFile, check_path, validate_files
from core.settings import get_settings
from core.snapshots import Manifest, SnapshotStore
from tasks.common import PhaseKey, retry_options
from tasks.context import PhaseContext
from tasks.models import GenerationRecord, GenerationRef
from usecases.budget import check_budget


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


def worst_case_tokens(generator: Generator) -> int:
    """The most tokens one generation may spend (0 for generators that cost nothing)."""
    per_call = int(getattr(generator, "max_output_tokens", 0) or 0)
    rounds = int(getattr(generator, "max_repair_rounds", 0) or 0)
    return per_call * (1 + rounds)


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
    check_budget(ctx.store, ctx.run, settings, estimate=worst_case_tokens(generator))
    base = ctx.snapshots.files(base_snapshot_id) if base_snapshot_id else []
    request = GenerationRequest(
        requirements=ctx.run.details.get("base_requirements", ctx.run.requirements),
        project_name=ctx.project.name,
        change_request=ctx.run.requirements if base_snapshot_id else None,
        current_files=base,
    )
    if isinstance(generator, PlanningGenerator) and generator.wants_plan(request):
        result = _plan_then_files(run_id, tenant_id, input_sha256, generator_ref, generator_fingerprint)
    else:
        result = generator.generate(request)
    files = merge_change(base, result.files, result.deleted) if base_snapshot_id else result.files
    files = validate_files(files, limits=settings.limits, allow_workflows=ctx.project.allow_workflows)
    return save_generation(ctx.snapshots, GenerationRecord(files=files, usage=result.usage, label=result.label))


# --- larger apps: a plan call, then one mapped task per file ---------------------------------------
@runtime_checkable
class PlanningGenerator(Protocol):
    """A generator that can plan a larger app and then write it one file per call."""

    def wants_plan(self, request: GenerationRequest) -> bool:
        """Whether this request is large enough to plan first (the generator's size rule)."""
        ...

    def plan(self, request: GenerationRequest) -> tuple[WirePlan, Usage]:
        """The file list with purposes."""
        ...

    def generate_file(self, request: GenerationRequest, plan: WirePlan, path: str) -> tuple[GeneratedFile, Usage]:
        """One planned file."""
        ...


_CONTEXT_LOCK = threading.Lock()


class PlanRecord(BaseModel):
    """A stored plan and what it cost."""

    plan: WirePlan
    usage: Usage = Field(default_factory=Usage)


class PlanRef(BaseModel):
    """A pointer to a stored plan."""

    plan_id: str
    paths: list[str]
    usage: Usage = Field(default_factory=Usage)


def _planning(ctx: PhaseContext, tenant_id: str, generator_ref: str) -> tuple[PlanningGenerator, GenerationRequest]:
    generator = resolve_generator(generator_ref, tenant_id=tenant_id, store=ctx.store)
    if not isinstance(generator, PlanningGenerator):
        raise ConfigError(f"generator {generator_ref!r} cannot plan an app file by file")
    request = GenerationRequest(
        requirements=ctx.run.details.get("base_requirements", ctx.run.requirements), project_name=ctx.project.name
    )
    return generator, request


@task(
    name="plan",
    cache_policy=PhaseKey(),
    timeout_seconds=get_settings().timeouts.task_generate,
    **retry_options(),
)
def plan_files(
    run_id: str, tenant_id: str, input_sha256: str, generator_ref: str, generator_fingerprint: str
) -> PlanRef:
    """Ask the generator for the app's file list (cached on requirements and generator config)."""
    ctx = PhaseContext(run_id)
    generator, request = _planning(ctx, tenant_id, generator_ref)
    plan, usage = generator.plan(request)
    paths = [entry.path for entry in plan.files]
    limits = get_settings().limits
    if len(paths) > limits.max_files:
        raise PathRuleViolation(
            paths[limits.max_files], "max-files", f"the plan lists more than {limits.max_files} files"
        )
    for path in paths:
        check_path(path, limits=limits, allow_workflows=ctx.project.allow_workflows)
    record = PlanRecord(plan=plan, usage=usage)
    plan_id = hashlib.sha256(record.model_dump_json().encode()).hexdigest()
    ctx.snapshots.put_record("plans", plan_id, record)
    return PlanRef(plan_id=plan_id, paths=paths, usage=usage)


@task(
    name="generate-file",
    task_run_name="generate-file {path}",
    cache_policy=PhaseKey(),
    timeout_seconds=get_settings().timeouts.task_generate,
    **retry_options(),
)
def generate_file(
    run_id: str, tenant_id: str, plan_id: str, path: str, generator_ref: str, generator_fingerprint: str
) -> GenerationRef:
    """Write one planned file (cached on plan id, path and generator config; retried on its own)."""
    with _CONTEXT_LOCK:  # mapped runs start together; Settings.ensure_data_dir's probe file is not thread-safe
        ctx = PhaseContext(run_id)
    generator, request = _planning(ctx, tenant_id, generator_ref)
    record: PlanRecord = ctx.snapshots.get_record("plans", plan_id, PlanRecord)
    produced, usage = generator.generate_file(request, record.plan, path)
    return save_generation(ctx.snapshots, GenerationRecord(files=[produced], usage=usage, label=f"planned {path}"))


def charge_failed(run_id: str, usage: Usage) -> None:
    """Record on the run what a phase spent before it failed (on success the flow records the usage)."""
    if not (usage.calls or usage.prompt_tokens or usage.completion_tokens):
        return
    store = PhaseContext(run_id).store
    for attempt in Retrying(stop=stop_after_attempt(5), retry=retry_if_exception_type(ConcurrentUpdate), reraise=True):
        with attempt:
            run = store.get_run(run_id)
            store.update(
                run,
                llm_calls=run.llm_calls + usage.calls,
                prompt_tokens=run.prompt_tokens + usage.prompt_tokens,
                completion_tokens=run.completion_tokens + usage.completion_tokens,
            )


def _fresh(state: Any) -> bool:
    """Whether a task run did the work (and paid) rather than answering from cache."""
    return not bool(getattr(state, "name", "") == "Cached")


def _plan_then_files(
    run_id: str, tenant_id: str, input_sha256: str, generator_ref: str, generator_fingerprint: str
) -> GenerationResult:
    """Plan, then map one ``generate-file`` task per planned file; usage counts only fresh calls."""
    plan_state = plan_files(run_id, tenant_id, input_sha256, generator_ref, generator_fingerprint, return_state=True)
    plan: PlanRef = plan_state.result()
    usage = plan.usage if _fresh(plan_state) else Usage()
    futures = generate_file.map(
        run_id=unmapped(run_id),
        tenant_id=unmapped(tenant_id),
        plan_id=unmapped(plan.plan_id),
        path=plan.paths,
        generator_ref=unmapped(generator_ref),
        generator_fingerprint=unmapped(generator_fingerprint),
    )
    try:
        refs: list[GenerationRef] = futures.result()  # raises the first file that still failed after its retries
    except BaseException:
        done = [f for f in futures if f.state.is_completed() and _fresh(f.state)]
        charge_failed(run_id, sum((f.result().usage for f in done), usage))
        raise
    snapshots = PhaseContext(run_id).snapshots
    files: list[GeneratedFile] = []
    for future, ref in zip(futures, refs, strict=True):
        files.extend(load_generation(snapshots, ref.generation_id).files)
        if _fresh(future.state):
            usage = usage + ref.usage
    return GenerationResult(files=files, usage=usage, label=f"planned: {len(files)} files, one call each")
