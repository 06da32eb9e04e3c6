"""The run state machine and the model defaults (DESIGN §2), without a database."""

from __future__ import annotations

import itertools

import pytest

from core.errors import IllegalTransition
from core.models import (
    ALLOWED,
    PHASES,
    TERMINAL,
    Phase,
    PhaseRun,
    Run,
    RunKind,
    RunStatus,
    check_transition,
    new_id,
    utcnow,
)

Q, D, R = RunStatus.queued, RunStatus.dispatched, RunStatus.running
V, F, C = RunStatus.verified, RunStatus.failed, RunStatus.cancelled

# The state machine, written out once more by hand: changing models.ALLOWED must change this too.
EXPECTED_ALLOWED = {
    Q: {D, R, C, F},  # a worker may start a run before the dispatcher marks it; failure/cancel at any time
    D: {R, Q, C, F},  # back to queued when the flow run could not be created
    R: {V, F, C, D},  # back to dispatched when the reconciler restarts a crashed flow run
    V: set(),
    F: set(),
    C: set(),
}


def test_allowed_transitions_are_exactly_the_documented_ones() -> None:
    assert {k: set(v) for k, v in ALLOWED.items()} == EXPECTED_ALLOWED


def test_the_happy_path_is_legal() -> None:
    for current, new in itertools.pairwise([Q, D, R, V]):
        check_transition(current, new)


def test_terminal_statuses_are_final_and_exactly_these() -> None:
    assert {V, F, C} == TERMINAL
    for status in TERMINAL:
        assert not ALLOWED[status]


@pytest.mark.parametrize("status", list(RunStatus))
def test_no_status_moves_to_itself(status: RunStatus) -> None:
    with pytest.raises(IllegalTransition):
        check_transition(status, status)


@pytest.mark.parametrize("new", list(RunStatus))
def test_leaving_a_final_status_says_it_is_final(new: RunStatus) -> None:
    with pytest.raises(IllegalTransition, match="nothing \\(it is final\\)"):
        check_transition(V, new)


def test_the_message_names_both_statuses_and_the_alternatives() -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(R, Q)
    message = str(info.value)
    assert "'running'" in message and "'queued'" in message
    assert "cancelled, dispatched, failed, verified" in message


def test_phases_are_the_pipeline_in_order() -> None:
    assert [p.value for p in PHASES] == [
        "preflight",
        "generate",
        "check",
        "store",
        "publish",
        "build",
        "deploy",
        "verify",
    ]


def test_run_defaults() -> None:
    run = Run(tenant_id="t", project_id="p", requirements="x")
    assert (run.status, run.kind, run.version, run.phase) == (Q, RunKind.create, 1, None)
    assert (run.prompt_tokens, run.completion_tokens, run.llm_calls) == (0, 0, 0)
    assert len(run.id) == 32 and len(run.request_id) == 32 and run.id != run.request_id
    assert run.details == {}
    assert run.created_at.tzinfo is not None


def test_mutable_defaults_are_not_shared() -> None:
    a = Run(tenant_id="t", project_id="p", requirements="x")
    b = Run(tenant_id="t", project_id="p", requirements="x")
    a.details["k"] = 1
    assert b.details == {}
    p1, p2 = PhaseRun(run_id="r", phase=Phase.check), PhaseRun(run_id="r", phase=Phase.check)
    p1.detail["k"] = 1
    assert p2.detail == {}


def test_ids_are_unique_hex_and_now_is_utc() -> None:
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert utcnow().utcoffset().total_seconds() == 0  # type: ignore[union-attr]
