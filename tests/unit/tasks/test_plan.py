"""Larger apps: the plan task lists the files (each path checked before anything is written) and charges its call;
each generate-file task writes one planned file and charges its own call."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prefect.blocks.core import Block

from core.errors import ConfigError, PathRuleViolation
from core.models import Run
from core.runtime import get_snapshots, get_store
from tasks._generations import load_generation
from tasks.models import PlanRecord
from tasks.plan import generate_file, plan_files
from tests.unit.tasks.conftest import TENANT
from tests.unit.tasks.generators import TOKENS_PER_ANSWER, PlanningScript

APP = {"index.html": '<script src="a.js"></script>', "a.js": "export const a = 1;\n"}


def test_the_plan_is_stored_and_its_call_charged(
    queue_run: Callable[..., Run], save: Callable[[str, Block], str]
) -> None:
    save("planner", PlanningScript(files=APP, max_output_tokens=100))
    run = queue_run(generator_ref="planner")
    plan = plan_files.fn(run.id, TENANT, "sha", "planner", "fp")
    assert plan.paths == ["index.html", "a.js"]
    stored: PlanRecord = get_snapshots(TENANT).get_record("plans", plan.plan_id, PlanRecord)
    assert [f.path for f in stored.plan.files] == plan.paths
    assert get_store().get_run(run.id).llm_calls == 1


def test_each_planned_file_is_written_by_its_own_call(
    queue_run: Callable[..., Run], save: Callable[[str, Block], str]
) -> None:
    save("planner", PlanningScript(files=APP, max_output_tokens=100))
    run = queue_run(generator_ref="planner")
    plan = plan_files.fn(run.id, TENANT, "sha", "planner", "fp")
    ref = generate_file.fn(run.id, TENANT, plan.plan_id, "a.js", "planner", "fp")
    files = load_generation(get_snapshots(TENANT), ref.generation_id).files
    assert [(f.path, f.content) for f in files] == [("a.js", APP["a.js"].encode())]
    saved = get_store().get_run(run.id)
    assert (saved.llm_calls, saved.completion_tokens) == (2, 2 * TOKENS_PER_ANSWER)


def test_a_plan_naming_a_forbidden_path_is_refused_before_it_is_kept(
    queue_run: Callable[..., Run], save: Callable[[str, Block], str]
) -> None:
    save("planner", PlanningScript(files={"index.html": "x", ".github/workflows/ci.yml": "on: push"}))
    run = queue_run(generator_ref="planner")
    with pytest.raises(PathRuleViolation) as info:
        plan_files.fn(run.id, TENANT, "sha", "planner", "fp")
    assert ".github/workflows/ci.yml" in info.value.message


def test_a_generator_that_cannot_plan_is_a_configuration_error(queue_run: Callable[..., Run]) -> None:
    with pytest.raises(ConfigError, match="cannot plan"):
        plan_files.fn(queue_run().id, TENANT, "sha", "offline", "fp")
