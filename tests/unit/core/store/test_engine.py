"""The store's engine on a real SQLite file: schema creation and checks, SQLite settings, background WAL
checkpoints, plain inserts and the optimistic update every group of tables writes through (DESIGN §2)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from core.errors import ConcurrentUpdate, NotFound, StateError
from core.models import Project, SchemaInfo
from core.store import SchemaMismatch, Store
from tests.unit.core.store.rows import make_project, make_run


# --- schema ----------------------------------------------------------------------------------------
def test_data_survives_a_new_store_on_the_same_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/x.db"
    first = Store(url)
    first.init()
    run = make_run(first)
    first.engine.dispose()

    again = Store(url)
    again.init()  # idempotent on an existing database
    assert again.get_run(run.id).requirements == run.requirements


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


def test_a_database_that_cannot_be_created_is_a_state_error_without_the_password(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="cannot create the state store"):
        Store(f"sqlite:///{tmp_path}/no/such/dir/x.db").init()
    assert Store("postgresql+psycopg://u:secret@127.0.0.1:1/x").safe_url == "postgresql+psycopg://u:***@127.0.0.1:1/x"


def test_ping_answers_on_a_reachable_database(store: Store) -> None:
    store.ping()


# --- SQLite settings -------------------------------------------------------------------------------
def test_sqlite_runs_in_wal_mode_with_foreign_keys(store: Store) -> None:
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(IntegrityError):
        store.create_project(
            Project(tenant_id="no-such-tenant", name="x", generator_ref="g", repository_ref="r", target_ref="t")
        )


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


def test_the_loser_can_reload_and_try_again(store: Store) -> None:
    run = make_run(store)
    stale = store.get_run(run.id)
    store.update(store.get_run(run.id), prompt_tokens=10)
    with pytest.raises(ConcurrentUpdate):
        store.update(stale, llm_calls=1)
    fresh = store.reload(stale)
    done = store.update(fresh, llm_calls=1)
    assert (done.prompt_tokens, done.llm_calls, done.version) == (10, 1, 3)


def test_reloading_a_row_that_is_gone_raises_not_found(store: Store) -> None:
    never_written = Project(tenant_id="t1", name="x", generator_ref="g", repository_ref="r", target_ref="t")
    with pytest.raises(NotFound, match="no longer exists"):
        store.reload(never_written)


def test_update_returns_a_fresh_copy_and_bumps_updated_at(store: Store) -> None:
    project = make_project(store)
    before = store.get_project(project.id)
    after = store.update(before, cleanup_on_failure=True)
    assert before.version == 1 and before.cleanup_on_failure is False
    assert after.version == 2 and after.cleanup_on_failure is True
    assert after.updated_at.replace(tzinfo=None) >= before.updated_at.replace(tzinfo=None)
