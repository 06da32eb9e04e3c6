"""`pombolt run` as a user runs it: a new process with only POMBOLT_DATA_DIR set (no Prefect settings, a
fresh HOME), so Prefect is configured by Pom-Bolt before it is imported. Everything the run keeps — Prefect's
home, its database and its cached task results — lives in the data dir: nothing lands in ~/.prefect, and a
data dir deleted and made again at the same path never meets the cache of the old one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REQ = "a pomodoro timer with a task list and dark mode"
REPO_ROOT = Path(__file__).resolve().parents[2]


def pombolt_process(data_dir: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a new process that has only POMBOLT_DATA_DIR and a fresh HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "POMBOLT_"))}
    env.update(POMBOLT_DATA_DIR=str(data_dir), HOME=str(home), PYTHONPATH=str(REPO_ROOT))
    return subprocess.run(
        [sys.executable, "-c", "from ops.cli import main; main()", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_report(data_dir: Path, home: Path) -> dict[str, Any]:
    done = pombolt_process(data_dir, home, "run", REQ, "--json")
    assert done.stdout.strip(), f"no report (exit {done.returncode}):\n{done.stderr[-3000:]}"
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_a_run_keeps_prefect_results_in_the_data_dir_and_a_remade_data_dir_starts_clean(tmp_path: Path) -> None:
    data, home = tmp_path / "data", tmp_path / "home"
    home.mkdir()
    try:
        first = run_report(data, home)
        assert first["status"] == "verified", first
        results = data / "storage" / "prefect-results"
        assert results.is_dir() and any(results.iterdir()), "task results are not in the data dir"
        assert not (home / ".prefect").exists(), sorted(str(p) for p in (home / ".prefect").rglob("*"))

        pombolt_process(data, home, "stop")  # the static server of the first data dir
        shutil.rmtree(data)  # the user deletes the data dir and runs again at the same path
        second = run_report(data, home)
        assert second["status"] == "verified", second
        assert not any(p["cached"] for p in second["phases"]), "a deleted data dir's cache answered"
    finally:
        if data.exists():
            pombolt_process(data, home, "stop")
