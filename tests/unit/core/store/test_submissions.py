"""The submission hot path on a real SQLite file: idempotency records unique per tenant, the API key check,
the one-connection lookup and the one-transaction write of ``POST /api/requirements`` (DESIGN §2)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from core.errors import ConcurrentUpdate, KeyNotLive
from core.models import IdempotencyRecord, Project, Run, build_row, utcnow
from core.store import KEY_NOT_LIVE, Store, hash_key
from tests.unit.core.store.rows import make_project, make_run


def _record(tenant_id: str, key: str, run: Run) -> IdempotencyRecord:
    return IdempotencyRecord(
        tenant_id=tenant_id, key=key, body_sha256="0" * 64, project_id=run.project_id, run_id=run.id
    )


def _new_project(tenant_id: str = "t1", name: str = "shop") -> Project:
    return build_row(
        Project, tenant_id=tenant_id, name=name, generator_ref="offline", repository_ref="none", target_ref="x"
    )


def _run_of(project: Project) -> Run:
    return build_row(Run, tenant_id=project.tenant_id, project_id=project.id, requirements="a timer")


# --- idempotency records ---------------------------------------------------------------------------
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


# --- the API key check -----------------------------------------------------------------------------
def test_only_a_live_key_of_the_same_tenant_passes(store: Store) -> None:
    row, plain = store.create_api_key("t1")
    store.ensure_tenant("t2")
    store.check_key_live("t1", hash_key(plain))
    with pytest.raises(KeyNotLive, match="unknown or revoked"):
        store.check_key_live("t2", hash_key(plain))  # another tenant's key
    with pytest.raises(KeyNotLive):
        store.check_key_live("t1", hash_key("pb_never-issued"))
    store.revoke_api_key(row.id)
    with pytest.raises(KeyNotLive) as info:
        store.check_key_live("t1", hash_key(plain))
    assert info.value.message == KEY_NOT_LIVE


# --- the lookup ------------------------------------------------------------------------------------
def test_lookup_finds_the_record_first_and_the_project_only_without_one(store: Store) -> None:
    shop = make_project(store)
    run = _run_of(shop)
    store.add_submission(None, run, _record("t1", "k-1", run))

    record, project = store.submission_lookup("t1", "k-1", "shop")
    assert record is not None and (record.key, record.run_id) == ("k-1", run.id)
    assert project is None  # a replay needs no project lookup
    record, project = store.submission_lookup("t1", "k-2", "shop")
    assert record is None and project is not None
    assert project.model_dump() == shop.model_dump()
    assert store.submission_lookup("t1", None, "blog") == (None, None)
    assert store.submission_lookup("t2", "k-1", "shop") == (None, None)  # another tenant sees nothing


def test_lookup_checks_the_api_key_when_given(store: Store) -> None:
    _row, plain = store.create_api_key("t1")
    make_project(store)
    assert store.submission_lookup("t1", None, "shop", api_key_hash=hash_key(plain))[1] is not None
    with pytest.raises(KeyNotLive):
        store.submission_lookup("t1", None, "shop", api_key_hash=hash_key("pb_other"))


# --- the write -------------------------------------------------------------------------------------
def test_a_new_project_its_run_and_record_are_written_together(store: Store) -> None:
    store.ensure_tenant("t1")
    project = _new_project()
    run = _run_of(project)
    record = _record("t1", "k-1", run)
    assert store.add_submission(project, run, record) is True
    assert store.get_project(project.id).model_dump() == project.model_dump()
    assert store.get_run(run.id).model_dump() == run.model_dump()
    assert store.find_idempotency("t1", "k-1").run_id == run.id  # type: ignore[union-attr]


def test_a_taken_idempotency_key_writes_nothing_and_returns_false(store: Store) -> None:
    store.ensure_tenant("t1")
    first = _new_project(name="first")
    first_run = _run_of(first)
    assert store.add_submission(first, first_run, _record("t1", "k-1", first_run))
    late = _new_project(name="late")
    late_run = _run_of(late)
    assert store.add_submission(late, late_run, _record("t1", "k-1", late_run)) is False
    assert store.find_project("t1", "late") is None
    assert [r.id for r in store.runs(first.id)] == [first_run.id]


def test_a_project_name_taken_meanwhile_is_a_concurrent_update(store: Store) -> None:
    make_project(store, name="shop")
    twin = _new_project(name="shop")
    run = _run_of(twin)
    with pytest.raises(ConcurrentUpdate, match="same project at the same time"):
        store.add_submission(twin, run, _record("t1", "k-1", run))
    assert store.find_idempotency("t1", "k-1") is None


def test_an_existing_project_is_changed_with_the_version_check(store: Store) -> None:
    project = make_project(store)
    run = _run_of(project)
    assert store.add_submission(None, run, None, changed=(project, {"target_ref": "prod", "updated_at": utcnow()}))
    changed = store.get_project(project.id)
    assert (changed.target_ref, changed.version) == ("prod", 2)
    assert store.get_run(run.id).project_id == project.id

    stale_run = _run_of(project)
    with pytest.raises(ConcurrentUpdate, match="changed by someone else"):
        store.add_submission(None, stale_run, None, changed=(project, {"target_ref": "dev"}))  # still version 1
    assert store.get_project(project.id).target_ref == "prod"
    assert [r.id for r in store.runs(project.id)] == [run.id]  # the run was rolled back too
