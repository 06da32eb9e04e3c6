"""Phase ``check``: static checks, with bounded repair rounds by the generator when it can repair.

Each repair round is charged to the run as soon as the generator answered, so a check that still fails
after its rounds has charged every one of them.
"""

from __future__ import annotations

from blocks.generators.base import GenerationRequest, Usage
from core.errors import CheckFailed
from core.files import GeneratedFile, validate_files
from core.settings import get_settings
from tasks._checks import run_checks
from tasks._generations import generation_kept, load_generation, merge_change, save_generation
from tasks._phase import PhaseContext, phase_task
from tasks.models import GenerationRecord, GenerationRef


def _format(problems: dict[str, str]) -> str:
    return "; ".join(f"{path or '(project)'}: {msg}" for path, msg in sorted(problems.items()))


@phase_task("check", timeout=get_settings().timeouts.task_generate, reuse_if=generation_kept)
def check(
    run_id: str, tenant_id: str, generation_id: str, generator_ref: str, generator_fingerprint: str
) -> GenerationRef:
    """Check the generated files; ask the generator to repair failing ones, a bounded number of times.

    Raises:
        CheckFailed: When files still fail after the generator's repair rounds (not retryable).
    """
    ctx = PhaseContext(run_id)
    record = load_generation(ctx.snapshots, generation_id)
    problems = run_checks(record.files)
    if not problems:
        return save_generation(ctx.snapshots, record.model_copy(update={"usage": Usage()}))
    files, spent, rounds = repair(ctx, generator_ref, record.files, problems)
    repaired = GenerationRecord(files=files, usage=spent, label=record.label, repair_rounds=rounds)
    return save_generation(ctx.snapshots, repaired)


def repair(
    ctx: PhaseContext, generator_ref: str, files: list[GeneratedFile], problems: dict[str, str]
) -> tuple[list[GeneratedFile], Usage, int]:
    """Send failing files back to the generator until the checks pass; return the files, the spend and the rounds.

    Raises:
        CheckFailed: When problems remain after ``max_repair_rounds`` rounds.
    """
    generator = ctx.generator(generator_ref)
    limits = get_settings().limits
    request = GenerationRequest(requirements=ctx.run.requirements, project_name=ctx.project.name)
    spent = Usage()
    done = 0
    for done in range(1, generator.max_repair_rounds + 1):
        failing = [f for f in files if f.path in problems]
        fix = generator.repair(request, failing, problems)
        ctx.charge(fix.usage)
        spent = spent + fix.usage
        merged = merge_change(files, fix.files, fix.deleted)
        files = validate_files(merged, limits=limits, allow_workflows=ctx.project.allow_workflows)
        problems = run_checks(files)
        if not problems:
            return files, spent, done
    raise CheckFailed(f"generated files failed checks after {done} repair round(s): {_format(problems)[:1500]}")
