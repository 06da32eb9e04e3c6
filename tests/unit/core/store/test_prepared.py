"""Prepared statements (the API's hot path) write and read rows exactly as SQLAlchemy's ORM would, on a
real SQLite file; the PostgreSQL twin of these checks is in tests/integration/core/test_store_postgres.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import bindparam, insert, select
from sqlmodel import col

from core.models import Project, Run, RunKind, RunStatus, build_row, utcnow
from core.store import Store
from core.store.prepared import Prepared
from core.store.submissions import _values


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path}/x.db")
    s.init()
    s.ensure_tenant("t1")
    return s


def a_project() -> Project:
    return build_row(
        Project,
        tenant_id="t1",
        name="shop",
        generator_ref="offline",
        repository_ref="local-git",
        target_ref="local-static",
        repository_state={"url": "file:///x", "nested": [1, {"a": None}]},
        token_cap=5000,
    )


def test_an_inserted_row_reads_back_through_the_orm_unchanged(store: Store) -> None:
    project = a_project()
    run = build_row(Run, tenant_id="t1", project_id=project.id, kind=RunKind.change, requirements="a ✓ timer")
    with store.engine.begin() as conn:
        assert Prepared(insert(Project), store.engine.dialect).execute(conn, _values(project)) == 1
        Prepared(insert(Run), store.engine.dialect).execute(conn, _values(run))
    assert store.get_project(project.id).model_dump() == project.model_dump()
    got = store.get_run(run.id)
    assert got.model_dump() == run.model_dump()
    assert got.status is RunStatus.queued and got.kind is RunKind.change  # enums, not their names
    assert got.created_at.tzinfo is not None


def test_a_select_reads_what_the_orm_wrote_with_the_same_types(store: Store) -> None:
    project = store.create_project(a_project())
    stmt = select(Project).where(col(Project.tenant_id) == bindparam("t"), col(Project.name) == bindparam("n"))
    with store.engine.connect() as conn:
        row = Prepared(stmt, store.engine.dialect).first(conn, {"t": "t1", "n": "shop"})
        missing = Prepared(stmt, store.engine.dialect).first(conn, {"t": "t1", "n": "other"})
    assert row is not None and missing is None
    assert build_row(Project, **row).model_dump() == project.model_dump()


def test_a_missing_parameter_names_itself(store: Store) -> None:
    stmt = select(Project.id).where(col(Project.name) == bindparam("name"))
    with store.engine.connect() as conn, pytest.raises(KeyError, match="name"):
        Prepared(stmt, store.engine.dialect).first(conn, {})


def test_a_duplicate_raises_the_drivers_integrity_error_and_writes_nothing(store: Store) -> None:
    project = a_project()
    twin = build_row(Project, **{**_values(a_project()), "name": "shop"})
    insert_project = Prepared(insert(Project), store.engine.dialect)
    with store.engine.begin() as conn:
        insert_project.execute(conn, _values(project))
    with pytest.raises(store.engine.dialect.loaded_dbapi.IntegrityError), store.engine.begin() as conn:
        insert_project.execute(conn, _values(twin))
    assert [p.id for p in store.list_projects("t1")] == [project.id]


def test_build_row_fills_defaults_like_the_models_own_init() -> None:
    now = utcnow()
    built = build_row(Run, tenant_id="t1", project_id="p", requirements="x")
    made = Run(tenant_id="t1", project_id="p", requirements="x")
    skip = {"id", "request_id", "created_at"}
    assert built.model_dump(exclude=skip) == made.model_dump(exclude=skip)
    assert built.id != made.id and len(built.id) == 32 and built.created_at >= now
    assert build_row(Run, tenant_id="t", project_id="p", requirements="x").details is not built.details


def test_build_row_refuses_unknown_and_missing_fields() -> None:
    with pytest.raises(TypeError, match="'requirements'"):
        build_row(Run, tenant_id="t1", project_id="p")
    with pytest.raises(TypeError, match="'colour'"):
        build_row(Run, tenant_id="t1", project_id="p", requirements="x", colour="red")


def test_a_built_row_updates_through_the_store(store: Store) -> None:
    project = store.create_project(a_project())
    run = build_row(Run, tenant_id="t1", project_id=project.id, requirements="x")
    with store.engine.begin() as conn:
        Prepared(insert(Run), store.engine.dialect).execute(conn, _values(run))
    moved = store.update(run, status=RunStatus.dispatched)
    assert moved.version == 2 and store.get_run(run.id).status is RunStatus.dispatched
