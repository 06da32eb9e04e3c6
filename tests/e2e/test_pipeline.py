"""The whole pipeline on embedded defaults, through the real CLI, real Prefect, real git and real HTTP."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from core.runtime import get_snapshots, get_store
from core.settings import get_settings
from ops.cli import app
from tests.e2e.test_blocks import CountingGenerator, FlakyStaticSite, calls

REQ = "a pomodoro timer with a task list and dark mode"
runner = CliRunner()


@pytest.fixture(autouse=True)
def isolated(data_dir: Path) -> Iterator[Path]:
    """Each test gets its own data dir; the static server it starts is stopped afterwards."""
    yield data_dir
    from blocks.targets.static_host import stop

    stop(get_settings())


def pombolt(*args: str) -> tuple[int, dict[str, Any] | None, str]:
    """Run the CLI in-process; return exit code, parsed --json output (if any) and stderr."""
    result = runner.invoke(app, list(args))
    payload = None
    if "--json" in args and result.stdout.strip():
        payload = json.loads(result.stdout.strip().splitlines()[-1])
    return result.exit_code, payload, result.stderr


def phases(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in report["phases"]}


def clone(url: str, dest: Path) -> dict[str, bytes]:
    subprocess.run(["git", "clone", "-q", url, str(dest)], check=True, capture_output=True)
    return {
        p.relative_to(dest).as_posix(): p.read_bytes()
        for p in dest.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(dest).parts
    }


def git_head(repo: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


def save_counting_generator(tmp_path: Path) -> Path:
    from blocks.catalog import save_block

    counter = tmp_path / "generate-calls"
    store = get_store()
    store.ensure_tenant(get_settings().default_tenant)
    save_block(store, get_settings().default_tenant, "counting", CountingGenerator(counter_file=str(counter)))
    return counter


def test_first_run_deploys_a_live_site_and_a_cloneable_commit(tmp_path: Path) -> None:
    code, report, err = pombolt("run", REQ, "--name", "pomodoro", "--json")
    assert code == 0, err
    assert report and report["status"] == "verified"
    assert [p["name"] for p in report["phases"]] == [
        "preflight",
        "generate",
        "check",
        "store",
        "publish",
        "build",
        "deploy",
        "verify",
    ]
    assert not any(p["cached"] for p in report["phases"])

    page = httpx.get(report["live_url"], timeout=10)
    assert page.status_code == 200
    assert "Pomodoro" in page.text and "generated offline" in page.text.lower()

    files = clone(report["repository_url"], tmp_path / "clone")
    store = get_store()
    run = store.get_run(report["run_id"])
    snapshot = {f.path: f.content for f in get_snapshots(run.tenant_id).files(run.snapshot_id)}
    assert files == snapshot
    assert git_head(tmp_path / "clone") == report["commit_sha"]
    assert hashlib.sha256(page.content).hexdigest() == hashlib.sha256(snapshot["index.html"]).hexdigest()
    assert len(store.versions(run.project_id)) == 1


def test_rerun_is_cached_and_a_change_makes_one_new_commit_on_the_same_site(tmp_path: Path) -> None:
    counter = save_counting_generator(tmp_path)
    code, first, err = pombolt("run", REQ, "--name", "pomo", "--generator", "counting", "--json")
    assert code == 0, err
    assert calls(counter) == 1

    code, again, err = pombolt("run", REQ, "--name", "pomo", "--json")
    assert code == 0, err
    before_deploy = ["preflight", "generate", "check", "store", "publish", "build"]
    assert all(phases(again)[p]["cached"] for p in before_deploy), again["phases"]
    assert calls(counter) == 1, "the generator must not be called again for the same requirements"
    assert again["commit_sha"] == first["commit_sha"]
    assert again["live_url"] == first["live_url"]
    assert again["spend"]["llm_calls"] == 0

    code, changed, err = pombolt("run", REQ.replace("dark mode", "light mode"), "--name", "pomo", "--json")
    assert code == 0, err
    assert calls(counter) == 2
    assert changed["repository_url"] == first["repository_url"]
    assert changed["commit_sha"] != first["commit_sha"]
    assert changed["live_url"] == first["live_url"]
    dest = tmp_path / "clone"
    clone(changed["repository_url"], dest)
    log = subprocess.run(["git", "-C", str(dest), "log", "--format=%H"], capture_output=True, text=True, check=True)
    assert log.stdout.split() == [changed["commit_sha"], first["commit_sha"]]
    page = httpx.get(changed["live_url"], timeout=10)
    assert "light mode" in page.text


def test_failed_deploy_is_resumed_by_a_retry_without_generating_again(tmp_path: Path) -> None:
    from blocks.catalog import save_block

    counter = save_counting_generator(tmp_path)
    deploys = tmp_path / "deploy-attempts"
    save_block(
        get_store(), get_settings().default_tenant, "flaky", FlakyStaticSite(counter_file=str(deploys), failures=1)
    )

    code, failed, _ = pombolt("run", REQ, "--name", "flaky", "--generator", "counting", "--target", "flaky", "--json")
    assert code == 1
    assert failed["status"] == "failed"
    assert failed["error"]["phase"] == "deploy"
    assert "simulated outage" in failed["error"]["message"]
    assert phases(failed)["deploy"]["status"] == "failed"

    code, retried, err = pombolt("run", REQ, "--name", "flaky", "--json")
    assert code == 0, err
    assert all(phases(retried)[p]["cached"] for p in ["generate", "check", "store", "publish", "build"])
    assert not phases(retried)["deploy"]["cached"]
    assert calls(counter) == 1
    assert calls(deploys) == 2


def test_a_deleted_snapshot_is_stored_again_instead_of_trusting_the_cache(tmp_path: Path) -> None:
    code, first, err = pombolt("run", REQ, "--name", "snap", "--json")
    assert code == 0, err
    store = get_store()
    run = store.get_run(first["run_id"])
    snaps = get_snapshots(run.tenant_id)
    manifest_file = Path(get_settings().storage_dir) / snaps.manifest_key(run.snapshot_id)
    assert manifest_file.exists()
    manifest_file.unlink()

    code, again, err = pombolt("run", REQ, "--name", "snap", "--json")
    assert code == 0, err
    assert phases(again)["generate"]["cached"]
    assert not phases(again)["store"]["cached"]
    assert manifest_file.exists()
    assert snaps.exists(run.snapshot_id)


def test_no_repository_skips_publish(tmp_path: Path) -> None:
    code, report, err = pombolt("run", "a counter", "--name", "norepo", "--repository", "none", "--json")
    assert code == 0, err
    assert phases(report)["publish"]["status"] == "skipped"
    assert report["repository_url"] is None


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", ""], "requirements are empty"),
        (["run", "   \n\t "], "requirements are empty"),
        (["run", "x" * 20_001], "over the 20000-character limit"),
        (["run", REQ, "--generator", "nope"], "no generator Block named 'nope'"),
        (["run", REQ, "--target", "nope"], "no target Block named 'nope'"),
        (["run", REQ, "--name", "Bad Name!"], "project name 'Bad Name!' is invalid"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(args: list[str], needle: str) -> None:
    code, _, err = pombolt(*args)
    assert code == 2
    assert needle in " ".join(err.split())
    assert "Traceback" not in err
    from sqlmodel import select

    from core.models import Project, Run

    with get_store().session() as s:
        assert s.exec(select(Project)).all() == []
        assert s.exec(select(Run)).all() == []


def test_unwritable_data_dir_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.runtime import reset_caches

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("POMBOLT_DATA_DIR", str(blocker / "data"))
    reset_caches()
    code, _, err = pombolt("run", REQ)
    assert code == 2
    assert "not writable" in err and "POMBOLT_DATA_DIR" in err


def test_static_server_port_in_use_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from core.runtime import reset_caches

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        monkeypatch.setenv("POMBOLT_STATIC_PORT", str(port))
        reset_caches()
        code, _, err = pombolt("run", REQ, "--name", "porty")
    assert code == 2
    assert str(port) in err and "POMBOLT_STATIC_PORT" in err


def test_a_cached_generation_whose_record_is_gone_is_generated_again(tmp_path: Path) -> None:
    """Storage partly deleted (records and snapshots) while task results survived: the cache must not answer
    with a generation that no longer exists, or every later run would fail at store the same way."""
    code, _, err = pombolt("run", REQ, "--name", "lost", "--json")
    assert code == 0, err
    storage = Path(get_settings().storage_dir) / "tenants"
    lost = [p for p in storage.rglob("*") if p.is_file() and ("records" in p.parts or "snapshots" in p.parts)]
    assert any("generations" in p.parts for p in lost)
    for path in lost:
        path.unlink()

    code, again, err = pombolt("run", REQ, "--name", "lost", "--json")
    assert code == 0, (err, again)
    assert again["status"] == "verified"
    assert not phases(again)["generate"]["cached"]
    assert not phases(again)["store"]["cached"]


def test_open_restarts_the_static_server_and_prints_where_the_site_is_served_now() -> None:
    code, report, err = pombolt("run", REQ, "--name", "opened", "--json")
    assert code == 0 and report, err
    from blocks.targets.static_host import stop

    stop(get_settings())  # the server is gone; the next one picks a free port, likely another
    result = runner.invoke(app, ["open", "opened"])
    assert result.exit_code == 0, result.stderr
    url = result.stdout.strip().splitlines()[-1]
    assert url.startswith("http://") and ".localhost:" in url
    page = httpx.get(url, timeout=10)  # tests/conftest.py resolves *.localhost to loopback, as browsers do
    assert page.status_code == 200 and "<html" in page.text.lower()
