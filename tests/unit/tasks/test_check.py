"""Phase check: files that pass go on at no cost; failing ones go back to the generator for a bounded number of
repair rounds, each charged when it was answered."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prefect.blocks.core import Block

from core.errors import CheckFailed
from core.models import Run
from core.runtime import get_snapshots, get_store
from tasks._generations import load_generation
from tasks.check import check
from tasks.generate import generate
from tests.unit.tasks.conftest import TENANT
from tests.unit.tasks.generators import ScriptedGenerator

BROKEN = {"index.html": "<h1>data</h1>\n", "data.json": "{"}


def generated(run: Run, generator: str) -> str:
    return generate.fn(run.id, TENANT, "sha", generator, "fp").generation_id


def calls(run: Run) -> int:
    return get_store().get_run(run.id).llm_calls


def test_files_that_pass_go_on_unchanged_and_cost_nothing(queue_run: Callable[..., Run]) -> None:
    run = queue_run()
    generation_id = generated(run, "offline")
    ref = check.fn(run.id, TENANT, generation_id, "offline", "fp")
    original = load_generation(get_snapshots(TENANT), generation_id)
    assert load_generation(get_snapshots(TENANT), ref.generation_id).files == original.files
    assert (ref.repair_rounds, ref.usage.free) == (0, True)


def test_failing_files_are_repaired_and_the_repair_is_charged(
    queue_run: Callable[..., Run], save: Callable[[str, Block], str]
) -> None:
    save(
        "fixer",
        ScriptedGenerator(
            files=BROKEN, fixes={"data.json": '{"ok": true}'}, max_output_tokens=100, max_repair_rounds=2
        ),
    )
    run = queue_run(generator_ref="fixer")
    ref = check.fn(run.id, TENANT, generated(run, "fixer"), "fixer", "fp")
    files = {f.path: f.content for f in load_generation(get_snapshots(TENANT), ref.generation_id).files}
    assert files["data.json"] == b'{"ok": true}'
    assert (ref.repair_rounds, ref.usage.calls) == (1, 1)
    assert calls(run) == 2  # the generation and one repair round


def test_files_still_broken_after_every_round_fail_the_check_and_every_round_is_charged(
    queue_run: Callable[..., Run], save: Callable[[str, Block], str]
) -> None:
    save("stubborn", ScriptedGenerator(files=BROKEN, max_output_tokens=100, max_repair_rounds=2))
    run = queue_run(generator_ref="stubborn")
    with pytest.raises(CheckFailed, match=r"after 2 repair round\(s\): data.json: invalid JSON") as info:
        check.fn(run.id, TENANT, generated(run, "stubborn"), "stubborn", "fp")
    assert not info.value.retryable
    assert calls(run) == 3


def test_a_generator_without_repair_rounds_fails_the_check_at_once(
    queue_run: Callable[..., Run], save: Callable[[str, Block], str]
) -> None:
    save("plain", ScriptedGenerator(files=BROKEN))
    run = queue_run(generator_ref="plain")
    with pytest.raises(CheckFailed, match=r"after 0 repair round\(s\)"):
        check.fn(run.id, TENANT, generated(run, "plain"), "plain", "fp")
