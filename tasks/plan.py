"""Larger apps: a ``plan`` task lists the files, then one mapped ``generate-file`` task writes each.

Part of phase ``generate`` (:func:`plan_then_files` runs inside the generate task when the generator's size
rule asks for a plan). Each task charges the run for its own call as soon as the provider answered, so a file
that fails after its retries costs only what was really spent, and a retried run pays for nothing twice.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from prefect import unmapped
from prefect.client.schemas.objects import State

from blocks.generators.base import GenerationRequest, GenerationResult, PlanningGenerator, Usage
from core.errors import ConfigError, PathRuleViolation
from core.files import GeneratedFile, check_path
from core.settings import get_settings
from tasks._generations import load_generation, save_generation
from tasks._phase import PhaseContext, phase_task
from tasks.models import GenerationRecord, GenerationRef, PlanRecord, PlanRef

_CONTEXT_LOCK = threading.Lock()


def _planning(ctx: PhaseContext, generator_ref: str) -> tuple[PlanningGenerator, GenerationRequest]:
    generator = ctx.generator(generator_ref)
    if not isinstance(generator, PlanningGenerator):
        raise ConfigError(f"generator {generator_ref!r} cannot plan an app file by file")
    request = GenerationRequest(
        requirements=ctx.details.base_requirements or ctx.run.requirements, project_name=ctx.project.name
    )
    return generator, request


@phase_task("plan", timeout=get_settings().timeouts.task_generate)
def plan_files(
    run_id: str, tenant_id: str, input_sha256: str, generator_ref: str, generator_fingerprint: str
) -> PlanRef:
    """Ask the generator for the app's file list (cached on requirements and generator config)."""
    ctx = PhaseContext(run_id)
    generator, request = _planning(ctx, generator_ref)
    plan, usage = generator.plan(request)
    ctx.charge(usage)
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


@phase_task("generate-file", run_name="generate-file {path}", timeout=get_settings().timeouts.task_generate)
def generate_file(
    run_id: str, tenant_id: str, plan_id: str, path: str, generator_ref: str, generator_fingerprint: str
) -> GenerationRef:
    """Write one planned file (cached on plan id, path and generator config; retried on its own)."""
    with _CONTEXT_LOCK:  # mapped runs start together; Settings.ensure_data_dir's probe file is not thread-safe
        ctx = PhaseContext(run_id)
    generator, request = _planning(ctx, generator_ref)
    record: PlanRecord = ctx.snapshots.get_record("plans", plan_id, PlanRecord)
    produced, usage = generator.generate_file(request, record.plan, path)
    ctx.charge(usage)
    return save_generation(ctx.snapshots, GenerationRecord(files=[produced], usage=usage, label=f"planned {path}"))


def _fresh(state: State[Any]) -> bool:
    """Whether a task run did the work (and paid) rather than answering from cache."""
    return state.name != "Cached"


def plan_then_files(
    ctx: PhaseContext, input_sha256: str, generator_ref: str, generator_fingerprint: str
) -> GenerationResult:
    """Plan, then map one ``generate-file`` task per planned file; the usage reported counts fresh calls only.

    Raises:
        Exception: The first file that still failed after its retries (the others are kept in cache).
    """
    run_id, tenant_id = ctx.run.id, ctx.run.tenant_id
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
    refs: list[GenerationRef] = futures.result()
    files: list[GeneratedFile] = []
    for future, ref in zip(futures, refs, strict=True):
        files.extend(load_generation(ctx.snapshots, ref.generation_id).files)
        if _fresh(future.state):
            usage = usage + ref.usage
    return GenerationResult(files=files, usage=usage, label=f"planned: {len(files)} files, one call each")
