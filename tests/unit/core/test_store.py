"""The state store on a real SQLite file: tenancy, optimistic concurrency, the run state machine, phases,
versions, idempotency records and API keys (DESIGN §2)."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from core.errors import ConcurrentUpdate, IllegalTransition, NotFound
from core.models import (
    ALLOWED,
    TERMINAL,
    ApiKey,
    IdempotencyRecord,
    Phase,
    PhaseStatus,
    Project,
    Run,
    RunKind,
    RunStatus,
    SchemaInfo,
    Version,
)
from core.store import SchemaMismatch, Store, hash_key


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path}/x.db")
    s.init()
    return s


def make_project(store: Store, tenant_id: str = "t1", name: str = "shop") -> Project:
    store.ensure_tenant(tenant_id)
    return store.create_project(
        Project(
            tenant_id=tenant_id,
            name=name,
            generator_ref="offline",
            repository_ref="local-git",
            target_ref="local-static",
        )
    )


def make_run(store: Store, tenant_id: str = "t1") -> Run:
    return store.create_run(make_project(store, tenant_id), "a todo app with dark mode")


# A legal way to reach every status from `queued`.
PATH_TO: dict[RunStatus, list[RunStatus]] = {
    RunStatus.queued: [],
    RunStatus.dispatched: [RunStatus.dispatched],
    RunStatus.running: [RunStatus.dispatched, RunStatus.running],
    RunStatus.verified: [RunStatus.dispatched, RunStatus.running, RunStatus.verified],
    RunStatus.failed: [RunStatus.dispatched, RunStatus.running, RunStatus.failed],
    RunStatus.cancelled: [RunStatus.dispatched, RunStatus.cancelled],
}


def run_in(store: Store, status: RunStatus) -> Run:
    run = make_run(store)
    for step in PATH_TO[status]:
        run = store.transition(run, step)
    assert run.status == status
    return run


ALL_PAIRS = list(itertools.product(RunStatus, RunStatus))
ILLEGAL = [(a, b) for a, b in ALL_PAIRS if b not in ALLOWED[a]]
LEGAL = [(a, b) for a, b in ALL_PAIRS if b in ALLOWED[a]]


# --- creating rows ---------------------------------------------------------------------------------
def test_create_tenant_project_and_run(store: Store) -> None:
    tenant = store.ensure_tenant("acme", "Acme Ltd")
    assert (tenant.id, tenant.name, tenant.version) == ("acme", "Acme Ltd", 1)
    assert store.ensure_tenant("acme", "another name").name == "Acme Ltd"  # get-or-create, not overwrite

    project = make_project(store, "acme", "shop")
    run = store.create_run(project, "a shop", request_id="req-123")

    loaded = store.get_run(run.id, tenant_id="acme")
    assert loaded.project_id == project.id
    assert loaded.tenant_id == "acme"
    assert (loaded.status, loaded.kind, loaded.version) == (RunStatus.queued, RunKind.create, 1)
    assert loaded.requirements == "a shop"
    assert loaded.request_id == "req-123"
    assert loaded.started_at is None and loaded.finished_at is None
    assert store.get_project(project.id, tenant_id="acme").name == "shop"
    assert store.find_project("acme", "shop") is not None
    assert store.latest_run(project.id).id == run.id  # type: ignore[union-attr]


def test_runs_get_their_own_request_ids_and_are_listed_oldest_first(store: Store) -> None:
    project = make_project(store)
    first = store.create_run(project, "one")
    second = store.create_run(project, "two", kind=RunKind.change, parent_run_id=first.id)
    assert first.request_id != second.request_id
    assert [r.id for r in store.runs(project.id)] == [first.id, second.id]
    assert store.latest_run(project.id).id == second.id  # type: ignore[union-attr]
    assert store.get_run(second.id).parent_run_id == first.id


def test_data_survives_a_new_store_on_the_same_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/x.db"
    first = Store(url)
    first.init()
    run = make_run(first)
    first.engine.dispose()

    again = Store(url)
    again.init()  # idempotent on an existing database
    assert again.get_run(run.id).requirements == run.requirements


# --- tenancy ---------------------------------------------------------------------------------------
def test_another_tenant_cannot_read_a_project_or_run(store: Store) -> None:
    run = make_run(store, "t1")
    store.ensure_tenant("t2")
    with pytest.raises(NotFound) as info:
        store.get_project(run.project_id, tenant_id="t2")
    assert info.value.code == "state.not_found"
    with pytest.raises(NotFound):
        store.get_run(run.id, tenant_id="t2")
    assert store.find_project("t2", "shop") is None
    assert store.list_projects("t2") == []
    assert [p.id for p in store.list_projects("t1")] == [run.project_id]


def test_missing_rows_raise_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.get_project("nope")
    with pytest.raises(NotFound):
        store.get_run("nope")


def test_same_project_name_is_allowed_for_two_tenants_but_not_within_one(store: Store) -> None:
    make_project(store, "t1", "shop")
    make_project(store, "t2", "shop")
    with pytest.raises(IntegrityError):
        make_project(store, "t1", "shop")


# --- optimistic concurrency ------------------------------------------------------------------------
def test_update_first_writer_wins_and_the_second_is_refused(store: Store) -> None:
    project = make_project(store)
    copy_a = store.get_project(project.id)
    copy_b = store.get_project(project.id)
    assert copy_a.version == copy_b.version == 1

    won = store.update(copy_a, name="by-a", repository_state={"url": "a"})
    assert (won.name, won.version) == ("by-a", 2)

    with pytest.raises(ConcurrentUpdate) as info:
        store.update(copy_b, name="by-b", target_state={"site": "b"})
    assert info.value.code == "state.concurrent_update"
    assert info.value.retryable is True

    row = store.get_project(project.id)
    assert (row.name, row.version) == ("by-a", 2)
    assert row.repository_state == {"url": "a"}
    assert row.target_state == {}  # nothing of the loser's write landed


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


def test_the_loser_can_reload_and_try_again(store: Store) -> None:
    run = make_run(store)
    stale = store.get_run(run.id)
    store.update(store.get_run(run.id), prompt_tokens=10)
    with pytest.raises(ConcurrentUpdate):
        store.update(stale, llm_calls=1)
    fresh = store.reload(stale)
    done = store.update(fresh, llm_calls=1)
    assert (done.prompt_tokens, done.llm_calls, done.version) == (10, 1, 3)


def test_update_returns_a_fresh_copy_and_bumps_updated_at(store: Store) -> None:
    project = make_project(store)
    before = store.get_project(project.id)
    after = store.update(before, cleanup_on_failure=True)
    assert before.version == 1 and before.cleanup_on_failure is False
    assert after.version == 2 and after.cleanup_on_failure is True
    assert after.updated_at.replace(tzinfo=None) >= before.updated_at.replace(tzinfo=None)


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


# --- versions --------------------------------------------------------------------------------------
def _verified(store: Store, project: Project, n: int) -> Run:
    run = store.create_run(project, f"v{n}")
    return store.update(
        run,
        snapshot_id=f"{n:064x}",
        site_snapshot_id=f"{n + 100:064x}",
        live_url=f"http://127.0.0.1:1/{n}/",
        commit_sha=f"{n:040x}",
    )


def test_add_version_numbers_1_2_3_per_project(store: Store) -> None:
    shop, blog = make_project(store, name="shop"), make_project(store, name="blog")
    numbers = [store.add_version(_verified(store, shop, n)).number for n in range(1, 4)]
    assert numbers == [1, 2, 3]
    assert store.add_version(_verified(store, blog, 9)).number == 1

    versions = store.versions(shop.id)
    assert [v.number for v in versions] == [1, 2, 3]
    assert versions[1].snapshot_id == f"{2:064x}"
    assert versions[1].live_url == "http://127.0.0.1:1/2/"
    assert versions[1].commit_sha == f"{2:040x}"


def test_a_version_number_cannot_be_taken_twice(store: Store) -> None:
    project = make_project(store)
    run = _verified(store, project, 1)
    store.add_version(run)
    with pytest.raises(IntegrityError), store.session() as s:
        s.add(
            Version(
                tenant_id="t1",
                project_id=project.id,
                run_id=run.id,
                number=1,
                snapshot_id="a",
                site_snapshot_id="b",
                live_url="u",
            )
        )
        s.commit()


# --- idempotency -----------------------------------------------------------------------------------
def _record(tenant_id: str, key: str, run: Run) -> IdempotencyRecord:
    return IdempotencyRecord(
        tenant_id=tenant_id, key=key, body_sha256="0" * 64, project_id=run.project_id, run_id=run.id
    )


def test_an_idempotency_key_is_unique_per_tenant(store: Store) -> None:
    run_1 = make_run(store, "t1")
    run_2 = make_run(store, "t2")
    with store.session() as s:
        s.add(_record("t1", "key-1", run_1))
        s.add(_record("t2", "key-1", run_2))  # the same key in another tenant is independent
        s.commit()

    with pytest.raises(IntegrityError), store.session() as s:
        s.add(_record("t1", "key-1", run_1))
        s.commit()

    assert store.find_idempotency("t1", "key-1").run_id == run_1.id  # type: ignore[union-attr]
    assert store.find_idempotency("t2", "key-1").run_id == run_2.id  # type: ignore[union-attr]
    assert store.find_idempotency("t1", "key-2") is None
    assert store.find_idempotency("t3", "key-1") is None


# --- API keys --------------------------------------------------------------------------------------
def test_api_key_resolves_to_its_tenant_until_revoked(store: Store) -> None:
    row, plain = store.create_api_key("acme")
    other_row, other_plain = store.create_api_key("globex")
    assert plain != other_plain
    assert store.tenant_for_key(plain).id == "acme"  # type: ignore[union-attr]
    assert store.tenant_for_key(other_plain).id == "globex"  # type: ignore[union-attr]
    assert store.tenant_for_key(plain + "x") is None
    assert store.tenant_for_key("") is None

    revoked = store.revoke_api_key(row.id)
    assert revoked.revoked_at is not None
    assert store.tenant_for_key(plain) is None
    assert store.tenant_for_key(other_plain).id == "globex"  # type: ignore[union-attr]

    store.revoke_api_key(other_row.prefix)
    assert store.tenant_for_key(other_plain) is None


def test_revoking_an_unknown_key_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.revoke_api_key("pb_nothing")


def test_only_the_hash_of_an_api_key_is_stored(store: Store, tmp_path: Path) -> None:
    row, plain = store.create_api_key("acme")
    assert row.key_hash == hash_key(plain) != plain
    with store.session() as s:
        (stored,) = s.exec(select(ApiKey)).all()
    assert stored.key_hash == hash_key(plain)
    assert plain.startswith(stored.prefix) and len(stored.prefix) < len(plain)

    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("x.db"))
    assert hash_key(plain).encode() in on_disk  # the check below looks at the right bytes
    assert plain.encode() not in on_disk


# --- schema and SQLite settings --------------------------------------------------------------------
def test_a_database_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/x.db"
    first = Store(url)
    first.init()
    with first.session() as s:
        info = s.get(SchemaInfo, 1)
        assert info is not None
        info.version = 999
        s.add(info)
        s.commit()
    first.engine.dispose()

    with pytest.raises(SchemaMismatch) as exc:
        Store(url).init()
    assert exc.value.code == "state.schema"
    assert "999" in str(exc.value)


def test_sqlite_runs_in_wal_mode_with_foreign_keys(store: Store) -> None:
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(IntegrityError):
        store.create_project(
            Project(tenant_id="no-such-tenant", name="x", generator_ref="g", repository_ref="r", target_ref="t")
        )


# --- block bindings --------------------------------------------------------------------------------
def test_block_bindings_are_per_tenant_and_rebinding_replaces(store: Store) -> None:
    store.ensure_tenant("t1")
    store.ensure_tenant("t2")
    store.bind_block("t1", "prod", "pombolt-netlify", "t1-prod")
    store.bind_block("t2", "prod", "pombolt-vercel", "t2-prod")
    rebound = store.bind_block("t1", "prod", "pombolt-netlify", "t1-prod-v2")
    assert (rebound.document_name, rebound.version) == ("t1-prod-v2", 2)
    assert store.find_block("t1", "prod").document_name == "t1-prod-v2"  # type: ignore[union-attr]
    assert store.find_block("t2", "prod").slug == "pombolt-vercel"  # type: ignore[union-attr]
    assert store.find_block("t3", "prod") is None
    assert [b.name for b in store.list_blocks("t1")] == ["prod"]


def test_background_checkpoints_take_the_wal_off_the_request_path(store: Store, tmp_path: Path) -> None:
    database = tmp_path / "x.db"  # under WAL, only a checkpoint writes to the database file itself
    make_project(store, name="first")
    stop = store.checkpoint_in_background(interval=0.05)
    try:
        with store.engine.connect() as conn:  # a new connection: the inline checkpoint is only a safety net
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 10_000
        time.sleep(0.3)
        before = database.stat().st_mtime_ns, database.read_bytes()
        for i in range(30):  # ~30 WAL pages: far below both thresholds, nothing inline would checkpoint them
            make_project(store, name=f"p{i}")
        deadline = time.monotonic() + 10
        while (database.stat().st_mtime_ns, database.read_bytes()) == before:
            assert time.monotonic() < deadline, "the background thread did not checkpoint the WAL within 10 s"
            time.sleep(0.05)
    finally:
        stop()
    assert not [t for t in threading.enumerate() if t.name == "pombolt-wal-checkpoint"]
    with store.engine.connect() as conn:  # and the database file now holds the rows
        assert conn.execute(text("SELECT count(*) FROM project")).scalar() == 31


def test_background_checkpoints_are_a_no_op_off_sqlite() -> None:
    pg = Store("postgresql+psycopg://u:p@127.0.0.1:1/x")  # never connects
    pg.checkpoint_in_background()()


def test_background_checkpoints_can_start_and_stop_again(store: Store) -> None:
    """Each API lifespan starts and stops its own thread; the connection setting is registered once."""
    for _ in range(3):
        store.checkpoint_in_background(interval=0.05)()
    listeners = [fn for fn in store.engine.pool.dispatch.connect if fn.__name__ == "_late_checkpoints"]
    assert len(listeners) == 1
    assert not [t for t in threading.enumerate() if t.name == "pombolt-wal-checkpoint"]
