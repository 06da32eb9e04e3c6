"""The state store on a real PostgreSQL (a throwaway cluster): optimistic concurrency and version numbering
hold under real concurrent writers, as they must when many workers and API replicas share one database."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text

from core.errors import ConcurrentUpdate, KeyNotLive
from core.models import Project, Run, RunStatus
from core.settings import get_settings
from core.store import Store, hash_key
from tasks.livecheck import latest_versions
from tests.infra.postgres import postgres
from usecases.submit import Submission, submit_idempotent

pytestmark = pytest.mark.scale


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres("pombolt_store") as pg:
        yield pg.psycopg_url


@pytest.fixture
def store(pg_url: str) -> Iterator[Store]:
    s = Store(pg_url)
    s.init()
    yield s
    with s.engine.begin() as conn:  # each test starts from empty tables
        conn.execute(
            text(
                "TRUNCATE livecheck, version, phaserun, idempotencyrecord, run, project, apikey, "
                "blockbinding, tenant CASCADE"
            )
        )
    s.engine.dispose()


def make_project(store: Store, name: str = "shop") -> Project:
    store.ensure_tenant("t1")
    return store.create_project(
        Project(
            tenant_id="t1", name=name, generator_ref="offline", repository_ref="local-git", target_ref="local-static"
        )
    )


def race(n: int, work: Callable[[int], Any]) -> tuple[list[Any], list[BaseException]]:
    """Run ``work(i)`` in ``n`` threads released at the same moment; collect results and errors."""
    gate = threading.Barrier(n)
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        gate.wait(timeout=10)
        try:
            value = work(i)
            with lock:
                results.append(value)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results, errors


def test_the_store_really_runs_on_postgresql(store: Store) -> None:
    assert store.engine.dialect.name == "postgresql"
    assert store.engine.dialect.driver == "psycopg"


def test_occ_exactly_one_of_many_concurrent_writers_wins(store: Store) -> None:
    project = make_project(store)
    copies = [store.get_project(project.id) for _ in range(8)]

    results, errors = race(8, lambda i: store.update(copies[i], name=f"by-{i}"))

    assert len(results) == 1, f"exactly one writer must win, got {len(results)}"
    assert len(errors) == 7 and all(isinstance(e, ConcurrentUpdate) for e in errors), errors
    row = store.get_project(project.id)
    assert (row.name, row.version) == (results[0].name, 2)


def test_occ_one_transition_wins_between_dispatch_and_cancel(store: Store) -> None:
    run = store.create_run(make_project(store), "a todo app")
    copy_a, copy_b = store.get_run(run.id), store.get_run(run.id)

    def move(i: int) -> Run:
        if i == 0:
            return store.transition(copy_a, RunStatus.dispatched, flow_run_id="fr-1")
        return store.transition(copy_b, RunStatus.cancelled)

    results, errors = race(2, move)
    assert len(results) == 1 and len(errors) == 1 and isinstance(errors[0], ConcurrentUpdate)
    assert store.get_run(run.id).status == results[0].status
    assert store.get_run(run.id).version == 2


def _verified(store: Store, project: Project, n: int) -> Run:
    run = store.create_run(project, f"v{n}")
    return store.update(
        run,
        snapshot_id=f"{n:064x}",
        site_snapshot_id=f"{n + 100:064x}",
        live_url=f"http://127.0.0.1:1/{n}/",
        commit_sha=f"{n:040x}",
    )


def test_version_numbers_are_1_2_3_per_project(store: Store) -> None:
    shop, blog = make_project(store, "shop"), make_project(store, "blog")
    assert [store.add_version(_verified(store, shop, n)).number for n in range(1, 4)] == [1, 2, 3]
    assert store.add_version(_verified(store, blog, 9)).number == 1
    assert [v.number for v in store.versions(shop.id)] == [1, 2, 3]
    latest = {v.project_id: v.number for v in latest_versions(store)}
    assert latest == {shop.id: 3, blog.id: 1}


def test_concurrent_verified_runs_get_distinct_version_numbers(store: Store) -> None:
    project = make_project(store)
    runs = [_verified(store, project, n) for n in range(1, 4)]

    results, errors = race(3, lambda i: store.add_version(runs[i]))

    # add_version retries a lost number a bounded number of times; three writers always fit
    assert not errors, errors
    assert sorted(v.number for v in results) == [1, 2, 3]
    assert sorted(v.number for v in store.versions(project.id)) == [1, 2, 3]


def test_the_submission_hot_path_writes_rows_the_orm_reads_back_unchanged(store: Store) -> None:
    """POST /api/requirements writes through prepared statements on the DBAPI cursor (core.store.prepared):
    on psycopg too, every column (enums, JSON, timestamps) must read back as the ORM would have written it."""
    _key_row, plain = store.create_api_key("t1")
    sub = Submission(requirements="a pomodoro timer", name="pomo", target="netlify-main")
    project, run, created = submit_idempotent(
        store, "t1", sub, get_settings(), key="k-1", ensure_tenant=False, api_key_hash=hash_key(plain)
    )
    assert created
    assert store.get_project(project.id).model_dump() == project.model_dump()
    assert store.get_run(run.id).model_dump() == run.model_dump()
    # the same key and body replay the first run (read back through the prepared select)
    again = submit_idempotent(store, "t1", sub, get_settings(), key="k-1", api_key_hash=hash_key(plain))
    assert (again[1].id, again[2]) == (run.id, False)
    # a new run of the same project name reuses the project
    other = submit_idempotent(store, "t1", Submission(requirements="a timer", name="pomo"), get_settings(), key=None)
    assert other[0].id == project.id and other[1].id != run.id


def test_a_revoked_or_foreign_key_writes_nothing(store: Store) -> None:
    row, plain = store.create_api_key("t1")
    store.ensure_tenant("t2")
    sub = Submission(requirements="a timer")
    with pytest.raises(KeyNotLive):
        submit_idempotent(store, "t2", sub, get_settings(), key=None, api_key_hash=hash_key(plain))
    store.revoke_api_key(row.id)
    with pytest.raises(KeyNotLive):
        submit_idempotent(store, "t1", sub, get_settings(), key=None, api_key_hash=hash_key(plain))
    assert store.list_projects("t1") == [] and store.list_projects("t2") == []


def test_concurrent_submissions_with_one_idempotency_key_make_one_run(store: Store) -> None:
    store.ensure_tenant("t1")
    sub = Submission(requirements="a timer", name="timer")
    results, errors = race(
        8, lambda _i: submit_idempotent(store, "t1", sub, get_settings(), key="same", ensure_tenant=False)
    )
    assert not errors, errors
    assert len({run.id for _p, run, _c in results}) == 1
    assert sum(created for _p, _r, created in results) == 1
