"""Phase generate: the generator Block's files, validated, stored once, and the paid call charged once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from prefect.blocks.core import Block

from core.errors import BudgetExceeded, PathRuleViolation
from core.files import GeneratedFile
from core.models import Run, RunKind
from core.runtime import get_snapshots, get_store
from core.settings import get_settings
from core.snapshots import Manifest
from tasks._generations import generation_kept, load_generation
from tasks._phase import Reuse
from tasks.generate import generate
from tasks.models import BaseVersion
from tests.unit.tasks.conftest import TENANT
from tests.unit.tasks.generators import TOKENS_PER_ANSWER, ScriptedGenerator


def spend(run: Run) -> tuple[int, int]:
    saved = get_store().get_run(run.id)
    return saved.llm_calls, saved.completion_tokens


def test_the_files_are_stored_as_one_generation_whose_snapshot_id_is_known(queue_run: Callable[..., Run]) -> None:
    run = queue_run("a pomodoro timer with dark mode")
    ref = generate.fn(run.id, TENANT, "sha-of-the-text", "offline", "fingerprint")
    record = load_generation(get_snapshots(TENANT), ref.generation_id)
    assert {f.path for f in record.files} >= {"index.html", "app.js"}
    assert ref.snapshot_id == Manifest.of(record.files).snapshot_id
    assert (ref.file_count, ref.usage.free) == (len(record.files), True)
    assert spend(run) == (0, 0)


def test_a_paid_answer_is_charged_to_the_run_once_when_it_arrives(
    queue_run: Callable[..., Run], save: Callable[[str, Block], str]
) -> None:
    save("paid", ScriptedGenerator(max_output_tokens=100))
    run = queue_run(generator_ref="paid")
    ref = generate.fn(run.id, TENANT, "sha", "paid", "fingerprint")
    assert (ref.usage.calls, ref.usage.completion_tokens) == (1, TOKENS_PER_ANSWER)
    assert spend(run) == (1, TOKENS_PER_ANSWER)


def test_a_refused_path_fails_naming_it_and_the_answer_is_still_charged(
    queue_run: Callable[..., Run], save: Callable[[str, Block], str]
) -> None:
    save("evil", ScriptedGenerator(files={"index.html": "<h1>x</h1>", "../escape.txt": "owned"}, max_output_tokens=100))
    run = queue_run(generator_ref="evil")
    with pytest.raises(PathRuleViolation) as info:
        generate.fn(run.id, TENANT, "sha", "evil", "fingerprint")
    assert "../escape.txt" in info.value.message and not info.value.retryable
    assert spend(run) == (1, TOKENS_PER_ANSWER)  # the provider answered: that call was paid


def test_a_run_past_its_budget_is_refused_before_the_generator_is_asked(
    queue_run: Callable[..., Run], save: Callable[[str, Block], str]
) -> None:
    save("paid", ScriptedGenerator(max_output_tokens=100))  # worst case: 100 tokens
    store = get_store()
    store.update(store.ensure_tenant(TENANT), monthly_token_budget=50)
    run = queue_run(generator_ref="paid")
    with pytest.raises(BudgetExceeded, match="may spend up to 100 tokens"):
        generate.fn(run.id, TENANT, "sha", "paid", "fingerprint")
    assert spend(run) == (0, 0)


def test_a_change_run_builds_on_the_files_of_the_version_it_changes(
    queue_run: Callable[..., Run], save: Callable[[str, Block], str]
) -> None:
    save("scripted", ScriptedGenerator(files={"index.html": "<h1>changed</h1>"}))
    store, snapshots = get_store(), get_snapshots(TENANT)
    base = snapshots.put([GeneratedFile.text("index.html", "<h1>v1</h1>"), GeneratedFile.text("notes.txt", "kept")])
    first = queue_run("a pomodoro timer", generator_ref="scripted")
    first = store.update(first, snapshot_id=base.snapshot_id, site_snapshot_id=base.snapshot_id, live_url="http://x/")
    store.add_version(first)
    details = {"base_requirements": "a pomodoro timer", "combined_requirements": "a pomodoro timer\nadd notes"}
    change = queue_run("add notes", kind=RunKind.change, base_version=1, details=details)

    ref = generate.fn(
        change.id, TENANT, "sha", "scripted", "fp", base=BaseVersion(project_id=change.project_id, number=1)
    )
    files = {f.path: f.content.decode() for f in load_generation(snapshots, ref.generation_id).files}
    assert files["index.html"] == "<h1>changed</h1>" and files["notes.txt"] == "kept"
    assert "requirements=a pomodoro timer\nchange=add notes\ncurrent=index.html,notes.txt" in files["asked.txt"]


def test_a_cached_generation_counts_only_while_its_record_is_in_storage(queue_run: Callable[..., Run]) -> None:
    run = queue_run()
    ref = generate.fn(run.id, TENANT, "sha", "offline", "fingerprint")
    snapshots = get_snapshots(TENANT)
    reuse = Reuse(snapshots=snapshots, project=get_store().get_project(run.project_id))
    assert generation_kept(ref, reuse)
    (Path(get_settings().storage_dir) / snapshots.record_key("generations", ref.generation_id)).unlink()
    assert not generation_kept(ref, reuse)
