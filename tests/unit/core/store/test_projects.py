"""Projects, versions and live checks on a real SQLite file: tenancy, names unique per tenant, listing by the
status of the latest run, version numbers 1, 2, 3 per project and the live checks of versions (DESIGN §2)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from core.errors import NotFound
from core.models import LiveCheck, RunStatus, Version
from core.store import Store
from tests.unit.core.store.rows import make_project, make_run, move, verified_run


# --- projects and tenancy --------------------------------------------------------------------------
def test_create_find_and_get_a_project(store: Store) -> None:
    project = make_project(store, "acme", "shop")
    assert store.get_project(project.id, tenant_id="acme").name == "shop"
    assert store.get_project(project.id).tenant_id == "acme"
    assert store.find_project("acme", "shop").id == project.id  # type: ignore[union-attr]
    assert store.find_project("acme", "blog") is None


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


def test_projects_are_listed_newest_first_by_page(store: Store) -> None:
    names = [make_project(store, name=f"p{i}").name for i in range(5)]
    assert [p.name for p in store.list_projects("t1")] == names[::-1]
    assert [p.name for p in store.list_projects("t1", offset=1, limit=2)] == ["p3", "p2"]


def test_projects_are_filtered_by_the_status_of_their_latest_run(store: Store) -> None:
    done, busy, idle = (make_project(store, name=n) for n in ("done", "busy", "idle"))
    move(store, store.create_run(done, "first"), RunStatus.failed)
    move(store, store.create_run(done, "second"), RunStatus.verified)  # only the latest run counts
    move(store, store.create_run(busy, "first"), RunStatus.running)
    store.ensure_tenant("t2")
    other = make_project(store, "t2", "done")
    move(store, store.create_run(other, "x"), RunStatus.verified)  # another tenant's never shows

    assert [p.id for p in store.list_projects_with_status("t1", status=RunStatus.verified)] == [done.id]
    assert [p.id for p in store.list_projects_with_status("t1", status=RunStatus.running)] == [busy.id]
    assert store.list_projects_with_status("t1", status=RunStatus.failed) == []
    every = store.list_projects_with_status("t1", status=None)
    assert [p.id for p in every] == [idle.id, busy.id, done.id]
    assert [p.id for p in store.list_projects_with_status("t1", status=None, offset=1, limit=1)] == [busy.id]


# --- versions --------------------------------------------------------------------------------------
def test_add_version_numbers_1_2_3_per_project(store: Store) -> None:
    shop, blog = make_project(store, name="shop"), make_project(store, name="blog")
    numbers = [store.add_version(verified_run(store, shop, n)).number for n in range(1, 4)]
    assert numbers == [1, 2, 3]
    assert store.add_version(verified_run(store, blog, 9)).number == 1

    versions = store.versions(shop.id)
    assert [v.number for v in versions] == [1, 2, 3]
    assert versions[1].snapshot_id == f"{2:064x}"
    assert versions[1].live_url == "http://127.0.0.1:1/2/"
    assert versions[1].commit_sha == f"{2:040x}"


def test_a_version_number_cannot_be_taken_twice(store: Store) -> None:
    project = make_project(store)
    run = verified_run(store, project, 1)
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


def test_find_version_reads_a_version_by_id(store: Store) -> None:
    version = store.add_version(verified_run(store, make_project(store), 1))
    found = store.find_version(version.id)
    assert found is not None and (found.project_id, found.number) == (version.project_id, 1)
    assert store.find_version("no-such-version") is None


def test_latest_versions_are_the_newest_of_every_project_across_tenants(store: Store) -> None:
    shop, blog = make_project(store, name="shop"), make_project(store, "t2", "blog")
    make_project(store, name="never-verified")
    for n in range(1, 4):
        store.add_version(verified_run(store, shop, n))
    store.add_version(verified_run(store, blog, 7))

    latest = store.latest_versions()
    assert [(v.project_id, v.number) for v in latest] == [(shop.id, 3), (blog.id, 1)]  # oldest version first
    assert latest[1].tenant_id == "t2"


# --- live checks -----------------------------------------------------------------------------------
def _check(version: Version, *, ok: bool, minutes: int = 0) -> LiveCheck:
    return LiveCheck(
        tenant_id=version.tenant_id,
        project_id=version.project_id,
        version_id=version.id,
        url=version.live_url,
        ok=ok,
        expected_sha256="e" * 64,
        got_sha256=("e" if ok else "f") * 64,
        status_code=200,
        message=None if ok else "someone changed the site",
        checked_at=version.created_at + timedelta(minutes=minutes),
    )


def test_live_checks_are_recorded_and_listed_oldest_first_per_project(store: Store) -> None:
    shop, blog = make_project(store, name="shop"), make_project(store, name="blog")
    shop_v1 = store.add_version(verified_run(store, shop, 1))
    blog_v1 = store.add_version(verified_run(store, blog, 2))
    later = store.add_live_check(_check(shop_v1, ok=False, minutes=5))
    earlier = store.add_live_check(_check(shop_v1, ok=True, minutes=1))
    store.add_live_check(_check(blog_v1, ok=True))

    listed = store.live_checks(shop.id)
    assert [c.id for c in listed] == [earlier.id, later.id]
    assert (listed[1].ok, listed[1].message, listed[1].status_code) == (False, "someone changed the site", 200)
    assert len(store.live_checks(blog.id)) == 1
    assert store.live_checks("no-such-project") == []


def test_a_live_check_needs_an_existing_version(store: Store) -> None:
    version = store.add_version(verified_run(store, make_project(store), 1))
    orphan = _check(version, ok=True)
    orphan.version_id = "no-such-version"
    with pytest.raises(IntegrityError):
        store.add_live_check(orphan)
