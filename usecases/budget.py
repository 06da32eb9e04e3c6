"""Spend limits: refuse a run before any LLM call when it would pass a budget.

Budgets come from settings (defaults) and per tenant (``Tenant.monthly_token_budget``,
``Tenant.daily_run_budget``) and per project (``Project.token_cap``). A run is refused when what was
already spent plus the generator's worst-case estimate for this run would pass a limit; repair rounds
are spent tokens too, so they count.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from core.errors import BudgetExceeded
from core.models import Project, Run, Tenant
from core.settings import Settings
from core.store import Store


class TenantSpend(BaseModel):
    """What a tenant has spent and may spend."""

    tenant_id: str
    month_start: datetime
    tokens_this_month: int
    monthly_token_budget: int | None
    runs_today: int
    daily_run_budget: int | None
    month_resets_at: datetime
    day_resets_at: datetime


def _month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(start: datetime) -> datetime:
    return (start + timedelta(days=32)).replace(day=1)


def usage(store: Store, tenant: Tenant, settings: Settings, *, exclude_run: str | None = None) -> TenantSpend:
    """A tenant's spend this month and runs today."""
    now = datetime.now(UTC)
    month = _month_start(now)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    spent = store.tenant_tokens_since(tenant.id, month)
    runs = store.tenant_runs_since(tenant.id, day, exclude_run=exclude_run)
    return TenantSpend(
        tenant_id=tenant.id,
        month_start=month,
        tokens_this_month=int(spent),
        monthly_token_budget=tenant.monthly_token_budget or settings.budget_monthly_tokens,
        runs_today=int(runs),
        daily_run_budget=tenant.daily_run_budget or settings.budget_daily_runs,
        month_resets_at=_next_month(month),
        day_resets_at=day + timedelta(days=1),
    )


def project_tokens(store: Store, project: Project) -> int:
    """Tokens a project has spent in all."""
    return store.project_tokens(project.id)


def check_budget(store: Store, run: Run, settings: Settings, *, estimate: int, project: Project | None = None) -> None:
    """Refuse ``run`` when it would pass a limit.

    Args:
        store: The state store.
        run: The run about to generate.
        settings: Default budgets.
        estimate: Worst-case tokens this run may spend (0 for generators that cost nothing).
        project: The run's project, when the caller has read it already.

    Raises:
        BudgetExceeded: Naming the limit, what was spent, and when it resets.
    """
    tenant = store.ensure_tenant(run.tenant_id)
    project = project or store.get_project(run.project_id)
    u = usage(store, tenant, settings, exclude_run=run.id)
    if u.daily_run_budget is not None and u.runs_today >= u.daily_run_budget:
        raise BudgetExceeded(
            f"tenant {tenant.id!r} has started {u.runs_today} runs today, its limit is {u.daily_run_budget} runs "
            f"a day; it resets at {u.day_resets_at:%Y-%m-%d %H:%M} UTC"
        )
    if estimate <= 0:
        return
    if u.monthly_token_budget is not None and u.tokens_this_month + estimate > u.monthly_token_budget:
        raise BudgetExceeded(
            f"this run may spend up to {estimate} tokens; tenant {tenant.id!r} has spent {u.tokens_this_month} "
            f"of its {u.monthly_token_budget}-token monthly budget; it resets at {u.month_resets_at:%Y-%m-%d} UTC"
        )
    cap = project.token_cap or settings.budget_project_tokens
    if cap is not None and project_tokens(store, project) + estimate > cap:
        raise BudgetExceeded(
            f"this run may spend up to {estimate} tokens; project {project.name!r} has spent "
            f"{project_tokens(store, project)} of its {cap}-token cap; raise the cap to continue"
        )
