"""A database made by an older Pom-Bolt gains new nullable columns; anything else is refused clearly."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.models import Project
from core.store import SchemaMismatch, Store


def test_missing_nullable_column_is_added(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    Store(f"sqlite:///{db}").init()
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE project DROP COLUMN iteration_run_id")
    con.commit()
    con.close()

    store = Store(f"sqlite:///{db}")
    store.init()
    store.ensure_tenant("t")
    project = store.create_project(
        Project(tenant_id="t", name="p", generator_ref="offline", repository_ref="none", target_ref="x")
    )
    assert store.update(project, iteration_run_id="r1").iteration_run_id == "r1"


def test_missing_required_column_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    Store(f"sqlite:///{db}").init()
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE project DROP COLUMN generator_ref")
    con.commit()
    con.close()
    with pytest.raises(SchemaMismatch, match="lacks the required column generator_ref"):
        Store(f"sqlite:///{db}").init()
