"""Iterating on a live app with the local Blocks: create → change → change → rollback → change."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.runtime import get_snapshots, get_store
from core.settings import get_settings
from tests.e2e.test_blocks import calls
from tests.e2e.test_pipeline import clone, phases, pombolt, save_counting_generator


@pytest.fixture(autouse=True)
def isolated(data_dir: Path) -> Iterator[Path]:
    yield data_dir
    from blocks.targets.static_host import stop

    stop(get_settings())


def served_index(report: dict[str, Any]) -> str:
    return hashlib.sha256(httpx.get(report["live_url"], timeout=10).content).hexdigest()


def snapshot_index(report: dict[str, Any]) -> str:
    run = get_store().get_run(report["run_id"])
    return get_snapshots(run.tenant_id).manifest(run.site_snapshot_id).by_path()["index.html"].sha256


def test_create_change_change_rollback_change(tmp_path: Path) -> None:
    counter = save_counting_generator(tmp_path)
    code, v1, err = pombolt("run", "a pomodoro timer", "--name", "iter", "--generator", "counting", "--json")
    assert code == 0, err
    code, v2, err = pombolt("change", "iter", "add a task list", "--json")
    assert code == 0, err
    assert served_index(v2) == snapshot_index(v2)
    assert 'data-feature="tasks"' in httpx.get(v2["live_url"], timeout=10).text
    code, v3, err = pombolt("change", "iter", "and dark mode", "--json")
    assert code == 0, err
    assert calls(counter) == 3

    code, back, err = pombolt("rollback", "iter", "1", "--json")
    assert code == 0, err
    assert calls(counter) == 3, "a rollback must not call the generator"
    assert [p["name"] for p in back["phases"] if p["status"] == "skipped"] == ["generate", "check", "store"]
    assert served_index(back) == snapshot_index(v1)
    assert phases(back)["deploy"]["status"] == "completed"
    run = get_store().get_run(back["run_id"])
    deploy_detail = next(p for p in get_store().phases(run.id) if p.phase == "deploy").detail
    assert deploy_detail["uploaded"] == 0, "version 1's release is still kept, so nothing is uploaded"

    code, v5, err = pombolt("change", "iter", "add a counter", "--json")
    assert code == 0, err
    assert calls(counter) == 4

    shas = [r["commit_sha"] for r in (v1, v2, v3, back, v5)]
    assert len(set(shas)) == 5, "every iteration, the rollback included, is one new commit"
    dest = tmp_path / "clone"
    files = clone(v5["repository_url"], dest)
    log = subprocess.run(["git", "-C", str(dest), "log", "--format=%H %P"], capture_output=True, text=True, check=True)
    lines = [line.split() for line in log.stdout.strip().splitlines()]
    assert [line[0] for line in lines] == list(reversed(shas)), "one linear history"
    assert all(len(line) <= 2 for line in lines), "no merges"
    rollback_tree = subprocess.run(
        ["git", "-C", str(dest), "rev-parse", f"{back['commit_sha']}^{{tree}}", f"{v1['commit_sha']}^{{tree}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert rollback_tree[0] == rollback_tree[1], "the rollback commit restores version 1's tree"
    assert "index.html" in files

    versions = get_store().versions(get_store().get_run(v5["run_id"]).project_id)
    assert [v.number for v in versions] == [1, 2, 3, 4, 5]
    assert versions[3].snapshot_id == versions[0].snapshot_id


def test_change_without_a_version_and_unknown_rollback_are_refused() -> None:
    code, _, err = pombolt("change", "ghost", "anything")
    assert code == 2 and "no project 'ghost'" in err
    code, _, err = pombolt("run", "a counter", "--name", "one", "--json")
    assert code == 0, err
    code, _, err = pombolt("rollback", "one", "7")
    assert code == 2 and "no version 7" in err and "versions: 1" in err


def test_a_second_change_while_one_is_in_flight_is_refused() -> None:
    from core.errors import PomBoltError
    from usecases.iterate import create_change_run

    code, _, err = pombolt("run", "a counter", "--name", "busy", "--json")
    assert code == 0, err
    store = get_store()
    project = store.find_project(get_settings().default_tenant, "busy")
    first = create_change_run(store, project, "add notes", get_settings())
    with pytest.raises(PomBoltError) as excinfo:
        create_change_run(store, project, "add a timer", get_settings())
    assert excinfo.value.code == "input.run_in_progress"
    assert first.id[:12] in excinfo.value.message


def test_daily_run_budget_refuses_before_generating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.runtime import reset_caches

    counter = save_counting_generator(tmp_path)
    code, _, err = pombolt("run", "a counter", "--name", "budget", "--generator", "counting", "--json")
    assert code == 0, err
    monkeypatch.setenv("POMBOLT_BUDGET_DAILY_RUNS", "1")
    reset_caches()
    code, refused, _ = pombolt("run", "a counter and notes", "--name", "budget", "--json")
    assert code == 1
    assert refused["error"]["code"] == "budget.exceeded"
    assert refused["error"]["phase"] == "generate"
    assert "1 runs a day" in refused["error"]["message"]
    assert calls(counter) == 1
