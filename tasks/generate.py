"""Phase ``generate``: the generator Block turns requirements into files, validated by the path rules.

A change run builds on the files of the version it changes (looked up here from its number). A large app is
planned first and written one file per task (:mod:`tasks.plan`). Every paid call is charged to the run as
soon as the provider answered, by the task that made it.
"""

from __future__ import annotations

from blocks.generators.base import GenerationRequest, PlanningGenerator
from core.errors import NotFound
from core.files import GeneratedFile, validate_files
from core.settings import get_settings
from tasks._generations import generation_kept, load_generation, merge_change, save_generation
from tasks._phase import PhaseContext, phase_task
from tasks.models import BaseVersion, GenerationRecord, GenerationRef
from tasks.plan import plan_then_files
from usecases.budget import check_budget

__all__ = ["generate", "load_generation", "merge_change", "save_generation"]


def base_files(ctx: PhaseContext, base: BaseVersion | None) -> list[GeneratedFile]:
    """The files of the version a change run builds on (none for other runs).

    Raises:
        NotFound: When that version is not recorded any more.
    """
    if base is None:
        return []
    version = next((v for v in ctx.store.versions(base.project_id) if v.number == base.number), None)
    if version is None:
        raise NotFound(f"version {base.number} of the project is gone; send the change again")
    return ctx.snapshots.files(version.snapshot_id)


@phase_task("generate", timeout=get_settings().timeouts.task_generate, reuse_if=generation_kept)
def generate(
    run_id: str,
    tenant_id: str,
    input_sha256: str,
    generator_ref: str,
    generator_fingerprint: str,
    base: BaseVersion | None = None,
) -> GenerationRef:
    """Generate the project's files (cached on requirements, generator config and the version built on)."""
    ctx = PhaseContext(run_id)
    settings = get_settings()
    generator = ctx.generator(generator_ref)
    check_budget(ctx.store, ctx.run, settings, estimate=generator.worst_case_tokens(), project=ctx.project)
    current = base_files(ctx, base)
    request = GenerationRequest(
        requirements=ctx.details.base_requirements or ctx.run.requirements,
        project_name=ctx.project.name,
        change_request=ctx.run.requirements if base else None,
        current_files=current,
    )
    if isinstance(generator, PlanningGenerator) and generator.wants_plan(request):
        result = plan_then_files(ctx, input_sha256, generator_ref, generator_fingerprint)
    else:
        result = generator.generate(request)
        ctx.charge(result.usage)
    files = merge_change(current, result.files, result.deleted) if base else result.files
    files = validate_files(files, limits=settings.limits, allow_workflows=ctx.project.allow_workflows)
    return save_generation(ctx.snapshots, GenerationRecord(files=files, usage=result.usage, label=result.label))
