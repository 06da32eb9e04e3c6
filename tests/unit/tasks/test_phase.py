"""tasks._phase: what every phase task shares — its cache key, its retry rule, and one load of each thing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prefect.blocks.core import Block
from prefect.states import Completed, Failed

from blocks.generators.base import Usage
from core.errors import AuthFailed, ProviderUnavailable
from core.models import Run, RunDetails
from core.runtime import get_store, reset_caches
from core.settings import get_settings
from tasks._phase import BlockRefs, PhaseContext, PhaseKey, RunBlocks, retry_if_retryable, sharing
from tasks.generate import generate
from tasks.preflight import preflight
from tests.unit.tasks.conftest import selects
from tests.unit.tasks.generators import ScriptedGenerator


def key(task_name: str, **inputs: Any) -> str | None:
    return PhaseKey().compute_key(SimpleNamespace(task=SimpleNamespace(name=task_name)), inputs, {})  # type: ignore[arg-type]


# --- the cache key -------------------------------------------------------------------------------
def test_the_same_inputs_give_the_same_key_whatever_the_run(data_dir: Path) -> None:
    assert key("generate", run_id="a", input_sha256="x") == key("generate", run_id="b", input_sha256="x")
    assert key("generate", input_sha256="x") != key("generate", input_sha256="y")


def test_two_tasks_with_equal_inputs_never_share_a_key(data_dir: Path) -> None:
    assert key("generate", generation_id="g") != key("check", generation_id="g")


def test_a_new_storage_gets_new_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POMBOLT_DATA_DIR", str(tmp_path / "one"))
    reset_caches()
    first = key("store", generation_id="g")
    monkeypatch.setenv("POMBOLT_DATA_DIR", str(tmp_path / "two"))
    reset_caches()
    assert key("store", generation_id="g") != first
    reset_caches()


# --- the task options ----------------------------------------------------------------------------
def test_every_phase_task_retries_only_errors_that_say_they_are_retryable() -> None:
    timeouts = get_settings().timeouts
    assert generate.retries == preflight.retries == timeouts.task_retries
    assert generate.timeout_seconds == timeouts.task_generate
    assert preflight.timeout_seconds == timeouts.task_default
    outage = Failed(data=ProviderUnavailable("llm", "502 from the endpoint"))
    bad_token = Failed(data=AuthFailed("llm", "the key was rejected"))
    assert retry_if_retryable(generate, None, outage)  # type: ignore[arg-type]
    assert not retry_if_retryable(generate, None, bad_token)  # type: ignore[arg-type]
    assert not retry_if_retryable(generate, None, Completed(data=1))  # type: ignore[arg-type]


# --- one load of each thing per task -------------------------------------------------------------
def test_the_project_row_is_read_once_and_only_when_a_task_asks_for_it(queue_run: Callable[..., Run]) -> None:
    run = queue_run()
    with selects() as seen:
        ctx = PhaseContext(run.id)
        assert seen["project"] == 0
        assert ctx.project.name == ctx.project.name == "app"
    assert seen["project"] == 1


def test_a_saved_block_is_resolved_once_per_task(
    queue_run: Callable[..., Run], save: Callable[[str, Block], str]
) -> None:
    save("scripted", ScriptedGenerator())
    ctx = PhaseContext(queue_run(generator_ref="scripted").id)
    with selects() as seen:
        first = ctx.generator("scripted")
        assert ctx.generator("scripted") is first
    assert seen["blockbinding"] == 1


def test_phases_inside_a_flow_use_the_blocks_the_flow_resolved(
    queue_run: Callable[..., Run], save: Callable[[str, Block], str]
) -> None:
    save("scripted", ScriptedGenerator())
    run = queue_run(generator_ref="scripted")
    blocks = RunBlocks(run, BlockRefs.of(get_store().get_project(run.project_id)), get_store())
    prints = blocks.fingerprints()
    assert set(prints) == {"generator", "repository", "target"}
    with selects() as seen, sharing(blocks):
        assert PhaseContext(run.id).generator("scripted") is blocks.get("generator")
        assert PhaseContext(run.id).generator("scripted") is blocks.get("generator")
    assert seen["blockbinding"] == 0
    other = queue_run("another run", generator_ref="scripted")
    with sharing(blocks):
        assert PhaseContext(other.id).generator("scripted") is not blocks.get("generator")


def test_no_repository_has_no_block_and_a_fixed_fingerprint(queue_run: Callable[..., Run]) -> None:
    run = queue_run(name="norepo", repository_ref="none")
    blocks = RunBlocks(run, BlockRefs.of(get_store().get_project(run.project_id)), get_store())
    assert blocks.get("repository") is None
    assert blocks.fingerprints()["repository"] == "none"


# --- writes --------------------------------------------------------------------------------------
def test_spend_is_added_to_the_run_and_free_calls_write_nothing(queue_run: Callable[..., Run]) -> None:
    run = queue_run()
    ctx = PhaseContext(run.id)
    ctx.charge(Usage())
    assert get_store().get_run(run.id).version == run.version
    ctx.charge(Usage(calls=1, prompt_tokens=10, completion_tokens=20))
    ctx.charge(Usage(calls=2, prompt_tokens=1, completion_tokens=2))
    saved = get_store().get_run(run.id)
    assert (saved.llm_calls, saved.prompt_tokens, saved.completion_tokens) == (3, 11, 22)


def test_project_state_is_written_on_the_row_read_and_reread_only_after_a_lost_race(
    queue_run: Callable[..., Run],
) -> None:
    run = queue_run()
    ctx = PhaseContext(run.id)
    ctx.save_project_state(target_state={"site_id": "one"})
    store = get_store()
    store.update(store.get_project(run.project_id), token_cap=5)  # someone else writes the row meanwhile
    with selects() as seen:
        saved = ctx.save_project_state(target_state={"site_id": "two"})
    assert (saved.target_state, saved.token_cap) == ({"site_id": "two"}, 5)
    assert seen["project"] == 2  # the re-read after the lost race, and the read-back of the update that won


def test_run_details_are_typed_and_keep_what_they_do_not_name(queue_run: Callable[..., Run]) -> None:
    run = queue_run(details={"rollback_to": 2, "combined_requirements": "a\nb", "note": "kept"})
    details = PhaseContext(run.id).details
    assert (details.rollback_to, details.redeploy, details.requirements(run)) == (2, False, "a\nb")
    written = details.model_copy(update={"redeploy": True}).as_json()
    assert written == {"rollback_to": 2, "combined_requirements": "a\nb", "note": "kept", "redeploy": True}
    assert RunDetails().requirements(run) == run.requirements
