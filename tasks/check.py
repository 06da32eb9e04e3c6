"""Phase ``check``: static checks, with bounded repair rounds by the generator when it can repair."""

from __future__ import annotations

from prefect import task

from blocks.catalog import resolve_generator
from blocks.generators.base import GenerationRequest, Usage
from core.errors import CheckFailed
from core.files import validate_files
from core.settings import get_settings
from tasks._checks import run_checks
from tasks.common import PhaseKey, retry_options
from tasks.context import PhaseContext
from tasks.generate import charge_failed, load_generation, merge_change, save_generation
from tasks.models import GenerationRecord, GenerationRef


def _format(problems: dict[str, str]) -> str:
    return "; ".join(f"{path or '(project)'}: {msg}" for path, msg in sorted(problems.items()))


@task(
    name="check",
    cache_policy=PhaseKey(),
    timeout_seconds=get_settings().timeouts.task_generate,
    **retry_options(),
)
def check(
    run_id: str, tenant_id: str, generation_id: str, generator_ref: str, generator_fingerprint: str
) -> GenerationRef:
    """Check the generated files; ask the generator to repair failing ones, a bounded number of times."""
    ctx = PhaseContext(run_id)
    settings = get_settings()
    record = load_generation(ctx.snapshots, generation_id)
    files = record.files
    problems = run_checks(files)
    if not problems:
        return save_generation(ctx.snapshots, record.model_copy(update={"usage": Usage()}))
    generator = resolve_generator(generator_ref, tenant_id=tenant_id, store=ctx.store)
    rounds = int(getattr(generator, "max_repair_rounds", 0) or 0)
    spent = Usage()
    request = GenerationRequest(requirements=ctx.run.requirements, project_name=ctx.project.name)
    done = 0
    for done in range(1, rounds + 1):  # noqa: B007 - the count is reported after the loop
        failing = [f for f in files if f.path in problems]
        fix = generator.repair(request, failing, problems)
        spent = spent + fix.usage
        files = validate_files(
            merge_change(files, fix.files, fix.deleted),
            limits=settings.limits,
            allow_workflows=ctx.project.allow_workflows,
        )
        problems = run_checks(files)
        if not problems:
            break
    if problems:
        charge_failed(run_id, spent)  # repair calls were paid even though the check still fails
        raise CheckFailed(f"generated files failed checks after {done} repair round(s): {_format(problems)[:1500]}")
    repaired = GenerationRecord(files=files, usage=spent, label=record.label, repair_rounds=done)
    return save_generation(ctx.snapshots, repaired)
