"""The operations flows on the local Blocks: ``verify-live-sites`` notices a defaced site and records it;
``redeploy`` puts the version back without generating, and the next re-check is clean again."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from blocks.targets.static_host import sites_root
from core.runtime import get_store
from core.settings import get_settings
from flows.redeploy import redeploy
from flows.verify_live import verify_live_sites
from tasks.livecheck import checks
from tests.e2e.test_pipeline import pombolt

DEFACED = b"<!doctype html><h1>defaced</h1>"


@pytest.fixture(autouse=True)
def isolated(data_dir: Path) -> Iterator[Path]:
    yield data_dir
    from blocks.targets.static_host import stop

    stop(get_settings())


def deface(live_url: str) -> None:
    """Point the live site's folder at another release, as someone editing the server by hand would."""
    root = sites_root(get_settings())
    link = root / httpx.URL(live_url).host.split(".")[0]  # http://<site>.localhost:<port>/
    assert link.is_symlink(), f"{link} is not the site link the local target makes"
    fake = root / ".releases" / link.name / "defaced"
    fake.mkdir(parents=True)
    (fake / "index.html").write_bytes(DEFACED)
    tmp = link.with_name(link.name + ".tmp")
    tmp.symlink_to(os.path.relpath(fake, link.parent))
    os.replace(tmp, link)


def test_live_sites_are_rechecked_and_a_redeploy_restores_a_defaced_one() -> None:
    code, report, err = pombolt("run", "a counter with dark mode", "--name", "watched", "--json")
    assert code == 0, err
    assert report is not None
    project_id = report["project_id"]
    store = get_store()

    clean = verify_live_sites()
    assert (clean.checked, clean.failed) == (1, [])

    deface(report["live_url"])
    assert httpx.get(report["live_url"], timeout=10).content == DEFACED
    found = verify_live_sites()
    assert (found.checked, found.failed) == (1, [project_id])
    bad = checks(store, project_id)[-1]
    assert (bad.ok, bad.status_code, bad.url) == (False, 200, report["live_url"])
    assert bad.got_sha256 == hashlib.sha256(DEFACED).hexdigest() != bad.expected_sha256
    assert "redeploy" in (bad.message or "")

    summary = redeploy(project_id)
    assert summary.status == "verified"
    run = store.get_run(summary.run_id)
    assert run.details.get("redeploy") is True
    phases = {p.phase.value: p.status.value for p in store.phases(run.id)}
    assert [p for p, s in phases.items() if s == "skipped"] == ["generate", "check", "store"]  # nothing generated
    assert [v.number for v in store.versions(project_id)] == [1, 2]
    assert store.versions(project_id)[1].site_snapshot_id == store.versions(project_id)[0].site_snapshot_id
    assert httpx.get(report["live_url"], timeout=10).content != DEFACED

    again = verify_live_sites()
    assert (again.checked, again.failed) == (1, [])
    assert [c.ok for c in checks(store, project_id)] == [True, False, True]
