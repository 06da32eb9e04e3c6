"""Spend limits refuse a run before it may pass a budget, naming the limit and when it resets."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import BudgetExceeded
from core.models import Project
from core.settings import Settings
from core.store import Store
from usecases.budget import check_budget, usage


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'b.db'}")
    s.init()
    return s


def _project(store: Store, tenant: str = "t1", cap: int | None = None) -> Project:
    store.ensure_tenant(tenant)
    return store.create_project(
        Project(
            tenant_id=tenant, name="p", generator_ref="openai", repository_ref="none", target_ref="x", token_cap=cap
        )
    )


def _spend(store: Store, project: Project, tokens: int) -> None:
    run = store.create_run(project, "x")
    store.update(run, prompt_tokens=tokens // 2, completion_tokens=tokens - tokens // 2)


def test_monthly_token_budget_refuses_the_run_that_would_pass_it(store: Store, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, budget_monthly_tokens=1000)
    project = _project(store)
    _spend(store, project, 700)
    run = store.create_run(project, "next")
    check_budget(store, run, settings, estimate=300)  # exactly at the limit: allowed
    with pytest.raises(BudgetExceeded) as exc:
        check_budget(store, run, settings, estimate=301)
    assert exc.value.code == "budget.exceeded"
    assert "1000-token monthly budget" in exc.value.message and "resets at" in exc.value.message


def test_tenant_budget_overrides_the_default(store: Store, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, budget_monthly_tokens=10)
    project = _project(store)
    tenant = store.ensure_tenant("t1")
    store.update(tenant, monthly_token_budget=5000)
    run = store.create_run(project, "x")
    check_budget(store, run, settings, estimate=4000)
    assert usage(store, store.ensure_tenant("t1"), settings).monthly_token_budget == 5000


def test_project_cap_and_daily_runs(store: Store, tmp_path: Path) -> None:
    project = _project(store, cap=100)
    _spend(store, project, 90)
    run = store.create_run(project, "x")
    with pytest.raises(BudgetExceeded, match="100-token cap"):
        check_budget(store, run, Settings(data_dir=tmp_path), estimate=20)
    with pytest.raises(BudgetExceeded, match="limit is 1 runs a day"):
        check_budget(store, run, Settings(data_dir=tmp_path, budget_daily_runs=1), estimate=0)
    check_budget(store, run, Settings(data_dir=tmp_path, budget_daily_runs=2), estimate=0)


def test_budgets_are_per_tenant(store: Store, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, budget_monthly_tokens=1000)
    _spend(store, _project(store, "big"), 1000)
    other = _project(store, "small")
    check_budget(store, store.create_run(other, "x"), settings, estimate=1000)
