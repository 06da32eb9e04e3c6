"""Phase ``preflight``: every Block the run uses proves its credentials before anything is paid for."""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from blocks.generators.base import Generator
from blocks.repositories.base import RepositoryTarget
from blocks.targets.base import DeploymentTarget
from core.settings import get_settings
from tasks._phase import KINDS, PhaseContext, phase_task
from tasks.models import PreflightReport


@phase_task("preflight", timeout=get_settings().timeouts.task_default, expires=timedelta(minutes=10))
def preflight(run_id: str, refs: dict[str, str], fingerprints: dict[str, str]) -> PreflightReport:
    """Check the credentials and reachability of the run's generator, repository and target Blocks.

    Cached for ten minutes on the references and the Blocks' configurations (``fingerprints``): a run soon
    after another asks the providers nothing.
    """
    ctx = PhaseContext(run_id)
    checked: list[str] = []
    for kind in KINDS:
        block = ctx.block(kind, refs[kind])
        if block is None:  # the project keeps no repository
            continue
        cast(Generator | RepositoryTarget | DeploymentTarget, block).preflight()
        checked.append(f"{kind}:{refs[kind]}")
    return PreflightReport(checked=checked)
