"""Runs and phases on a real SQLite file: creating runs, the run state machine with optimistic concurrency,
the outbox claim, phases, and the figures budgets and metrics read from runs (DESIGN §2)."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from core.errors import ConcurrentUpdate, IllegalTransition
from core.models import ALLOWED, TERMINAL, Phase, PhaseStatus, Run, RunKind, RunStatus, utcnow
from core.store import Store, TargetOutcome
from tests.unit.core.store.rows import make_project, make_run, move

ALL_PAIRS = list(itertools.product(RunStatus, RunStatus))
ILLEGAL = [(a, b) for a, b in ALL_PAIRS if b not in ALLOWED[a]]
LEGAL = [(a, b) for a, b in ALL_PAIRS if b in ALLOWED[a]]


def run_in(store: Store, status: RunStatus, name: str = "shop") -> Run:
    return move(store, make_run(store, name=name), status)


# --- creating runs ---------------------------------------------------------------------------------
def test_create_a_run_of_a_project(store: Store) -> None:
    project = make_project(store, "acme", "shop")
    run = store.create_run(project, "a shop", request_id="req-123")

    loaded = store.get_run(run.id, tenant_id="acme")
    assert (loaded.project_id, loaded.tenant_id) == (project.id, "acme")
    assert (loaded.status, loaded.kind, loaded.version) == (RunStatus.queued, RunKind.create, 1)
    assert loaded.requirements == "a shop"
    assert loaded.request_id == "req-123"
    assert loaded.started_at is None and loaded.finished_at is None
    assert store.latest_run(project.id).id == run.id  # type: ignore[union-attr]


def test_runs_get_their_own_request_ids_and_are_listed_oldest_first(store: Store) -> None:
    project = make_project(store)
    first = store.create_run(project, "one")
    second = store.create_run(project, "two", kind=RunKind.change, parent_run_id=first.id)
    assert first.request_id != second.request_id
    assert [r.id for r in store.runs(project.id)] == [first.id, second.id]
    assert store.latest_run(project.id).id == second.id  # type: ignore[union-attr]
    assert store.get_run(second.id).parent_run_id == first.id
    assert store.latest_run("no-such-project") is None


def test_add_run_inserts_a_run_built_by_the_caller(store: Store) -> None:
    project = make_project(store)
    run = Run(
        tenant_id="t1",
        project_id=project.id,
        kind=RunKind.rollback,
        requirements="rollback to version 1",
        base_version=1,
        snapshot_id="a" * 64,
        details={"rollback_to": 1},
    )
    assert store.add_run(run) is run
    loaded = store.get_run(run.id)
    assert (loaded.kind, loaded.base_version, loaded.snapshot_id) == (RunKind.rollback, 1, "a" * 64)
    assert loaded.details == {"rollback_to": 1} and loaded.status == RunStatus.queued


def test_runs_with_status_lists_every_tenants_runs_oldest_first(store: Store) -> None:
    running = run_in(store, RunStatus.running)
    dispatched = move(store, make_run(store, "t2"), RunStatus.dispatched)
    run_in(store, RunStatus.verified, name="blog")
    make_run(store, "t3")  # queued

    wanted = (RunStatus.dispatched, RunStatus.running)
    assert [r.id for r in store.runs_with_status(wanted)] == [running.id, dispatched.id]
    assert store.runs_with_status([RunStatus.cancelled]) == []


# --- the run state machine -------------------------------------------------------------------------
def test_the_state_machine_covers_every_pair() -> None:
    assert len(ILLEGAL) + len(LEGAL) == len(RunStatus) ** 2
    assert LEGAL and ILLEGAL


@pytest.mark.parametrize(("current", "new"), ILLEGAL, ids=[f"{a}->{b}" for a, b in ILLEGAL])
def test_every_illegal_transition_raises_and_changes_nothing(store: Store, current: RunStatus, new: RunStatus) -> None:
    run = run_in(store, current)
    with pytest.raises(IllegalTransition) as info:
        store.transition(run, new)
    assert info.value.code == "state.illegal_transition"
    assert f"'{current}'" in str(info.value) and f"'{new}'" in str(info.value)
    row = store.get_run(run.id)
    assert (row.status, row.version) == (current, run.version)


@pytest.mark.parametrize(("current", "new"), LEGAL, ids=[f"{a}->{b}" for a, b in LEGAL])
def test_every_legal_transition_succeeds(store: Store, current: RunStatus, new: RunStatus) -> None:
    run = run_in(store, current)
    moved = store.transition(run, new)
    assert (moved.status, moved.version) == (new, run.version + 1)
    assert store.get_run(run.id).status == new


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_terminal_statuses_set_finished_at(store: Store, status: RunStatus) -> None:
    run = run_in(store, RunStatus.running)
    assert run.finished_at is None
    done = store.transition(run, status)
    assert done.finished_at is not None
    assert store.get_run(run.id).finished_at is not None


def test_running_sets_started_at_and_non_terminal_statuses_leave_finished_at_empty(store: Store) -> None:
    run = make_run(store)
    dispatched = store.transition(run, RunStatus.dispatched)
    assert dispatched.started_at is None and dispatched.finished_at is None
    running = store.transition(dispatched, RunStatus.running)
    assert running.started_at is not None and running.finished_at is None


def test_transition_carries_other_changes(store: Store) -> None:
    run = run_in(store, RunStatus.running)
    failed = store.transition(
        run,
        RunStatus.failed,
        error_phase="deploy",
        error_code="provider.auth",
        error_message="netlify: 401",
        error_retryable=False,
    )
    row = store.get_run(failed.id)
    assert (row.error_phase, row.error_code, row.error_retryable) == ("deploy", "provider.auth", False)


def test_transition_first_writer_wins_and_the_second_is_refused(store: Store) -> None:
    run = make_run(store)
    copy_a = store.get_run(run.id)
    copy_b = store.get_run(run.id)

    store.transition(copy_a, RunStatus.dispatched, flow_run_id="fr-1")
    with pytest.raises(ConcurrentUpdate):
        store.transition(copy_b, RunStatus.cancelled, error_message="cancelled by b")

    row = store.get_run(run.id)
    assert (row.status, row.version, row.flow_run_id) == (RunStatus.dispatched, 2, "fr-1")
    assert row.finished_at is None
    assert row.error_message is None


# --- the outbox ------------------------------------------------------------------------------------
def test_the_oldest_queued_run_is_claimed_and_marked_dispatched(store: Store) -> None:
    project = make_project(store)
    first, second = store.create_run(project, "one"), store.create_run(project, "two")
    with store.claim_queued_run() as claim:
        assert claim is not None and claim.run.id == first.id
        claim.mark_dispatched("fr-1")
    row = store.get_run(first.id)
    assert (row.status, row.flow_run_id, row.version) == (RunStatus.dispatched, "fr-1", 2)
    assert row.dispatched_at is not None

    with store.claim_queued_run(skip={second.id}) as claim:
        assert claim is None  # the only queued run left is skipped
    with store.claim_queued_run() as claim:
        assert claim is not None and claim.run.id == second.id  # left unmarked: it stays queued
    assert store.get_run(second.id).status == RunStatus.queued


def test_a_claimed_run_changed_meanwhile_is_not_marked(store: Store) -> None:
    run = make_run(store)
    with store.claim_queued_run() as claim:
        assert claim is not None
        store.transition(store.get_run(run.id), RunStatus.cancelled)
        with pytest.raises(ConcurrentUpdate, match="changed while it was being dispatched"):
            claim.mark_dispatched("fr-1")
    row = store.get_run(run.id)
    assert (row.status, row.flow_run_id) == (RunStatus.cancelled, None)


# --- phases ----------------------------------------------------------------------------------------
def test_start_and_finish_a_phase(store: Store) -> None:
    run = make_run(store)
    started = store.start_phase(run.id, Phase.generate)
    assert (started.status, started.ended_at, started.cached) == (PhaseStatus.running, None, False)

    finished = store.finish_phase(run.id, Phase.generate, PhaseStatus.completed, cached=True, detail={"files": 12})
    assert finished.id == started.id
    assert (finished.status, finished.cached, finished.detail) == (PhaseStatus.completed, True, {"files": 12})
    assert finished.ended_at is not None


def test_restarting_a_phase_reuses_its_row_and_resets_it(store: Store) -> None:
    run = make_run(store)
    first = store.start_phase(run.id, Phase.deploy)
    store.finish_phase(run.id, Phase.deploy, PhaseStatus.failed, cached=True, detail={"error": "502"})

    again = store.start_phase(run.id, Phase.deploy)
    assert again.id == first.id
    assert (again.status, again.ended_at, again.cached) == (PhaseStatus.running, None, False)
    assert again.version == 3
    assert len(store.phases(run.id)) == 1


def test_finish_without_start_records_the_phase(store: Store) -> None:
    run = make_run(store)
    row = store.finish_phase(run.id, Phase.preflight, PhaseStatus.skipped)
    assert row.status == PhaseStatus.skipped
    assert [p.phase for p in store.phases(run.id)] == [Phase.preflight]


def test_phases_come_back_in_pipeline_order(store: Store) -> None:
    run = make_run(store)
    for phase in (Phase.verify, Phase.preflight, Phase.store, Phase.generate):
        store.start_phase(run.id, phase)
    assert [p.phase for p in store.phases(run.id)] == [Phase.preflight, Phase.generate, Phase.store, Phase.verify]


def test_a_phase_needs_an_existing_run(store: Store) -> None:
    with pytest.raises(IntegrityError):
        store.start_phase("no-such-run", Phase.generate)


# --- budgets ---------------------------------------------------------------------------------------
def _spent(store: Store, run: Run, prompt: int, completion: int, *, days_ago: int = 0) -> Run:
    return store.update(
        run, prompt_tokens=prompt, completion_tokens=completion, created_at=utcnow() - timedelta(days=days_ago)
    )


def test_tenant_tokens_and_runs_are_counted_since_a_moment(store: Store) -> None:
    project = make_project(store)
    old = _spent(store, store.create_run(project, "old"), 1000, 1000, days_ago=40)
    recent = _spent(store, store.create_run(project, "recent"), 100, 20, days_ago=2)
    today = _spent(store, store.create_run(project, "today"), 3, 4)
    _spent(store, make_run(store, "t2"), 500, 500)  # another tenant's

    assert store.tenant_tokens_since("t1", utcnow() - timedelta(days=30)) == 127
    assert store.tenant_tokens_since("t1", utcnow() - timedelta(days=60)) == 2127
    assert store.tenant_tokens_since("t3", utcnow() - timedelta(days=60)) == 0  # no runs: 0, not None
    day = utcnow() - timedelta(hours=1)
    assert store.tenant_runs_since("t1", day) == 1
    assert store.tenant_runs_since("t1", day, exclude_run=today.id) == 0
    assert store.tenant_runs_since("t1", old.created_at) == 3
    assert store.tenant_runs_since("t1", old.created_at, exclude_run=recent.id) == 2


def test_project_tokens_add_up_every_run_of_the_project(store: Store) -> None:
    shop, blog = make_project(store, name="shop"), make_project(store, name="blog")
    _spent(store, store.create_run(shop, "one"), 10, 5, days_ago=400)
    _spent(store, store.create_run(shop, "two"), 1, 2)
    _spent(store, store.create_run(blog, "three"), 1000, 0)
    assert store.project_tokens(shop.id) == 18
    assert store.project_tokens("no-such-project") == 0


# --- metrics ---------------------------------------------------------------------------------------
def test_runs_and_finished_phases_are_counted_for_metrics(store: Store) -> None:
    run_in(store, RunStatus.verified, name="shop")
    run_in(store, RunStatus.verified, name="blog")
    run = make_run(store, "t2")
    assert store.count_runs_by_status() == {"verified": 2, "queued": 1}

    store.start_phase(run.id, Phase.generate)
    store.finish_phase(run.id, Phase.preflight, PhaseStatus.completed)
    durations = store.phase_durations()
    assert list(durations) == ["preflight"]  # a running phase is not counted
    count, seconds = durations["preflight"]
    assert count == 1 and 0 <= seconds < 60


def test_runs_by_target_groups_by_reference_block_slug_and_status(store: Store) -> None:
    store.ensure_tenant("t1")
    store.bind_block("t1", "prod", "pombolt-netlify", "t1-prod")
    saved = make_project(store, name="saved", target_ref="prod")
    builtin = make_project(store, name="builtin", target_ref="local-static")
    foreign = make_project(store, "t2", "foreign", target_ref="prod")  # t2 has no binding called prod
    for project, status in [(saved, RunStatus.verified), (saved, RunStatus.verified), (saved, RunStatus.failed)]:
        move(store, store.create_run(project, "x"), status)
    move(store, store.create_run(builtin, "x"), RunStatus.verified)
    move(store, store.create_run(foreign, "x"), RunStatus.failed)
    move(store, store.create_run(builtin, "x"), RunStatus.running)  # not asked for

    got = sorted(store.runs_by_target([RunStatus.verified, RunStatus.failed]), key=repr)
    assert got == sorted(
        [
            TargetOutcome("prod", "pombolt-netlify", RunStatus.verified, 2),
            TargetOutcome("prod", "pombolt-netlify", RunStatus.failed, 1),
            TargetOutcome("local-static", None, RunStatus.verified, 1),
            TargetOutcome("prod", None, RunStatus.failed, 1),
        ],
        key=repr,
    )
    assert all(isinstance(o.status, RunStatus) for o in got)
