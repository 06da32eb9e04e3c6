"""``prefect deploy --all`` from a clean copy of the checkout, against a real Prefect server in a subprocess:
the three deployments exist on the 'pombolt' process pool, the schedule is set, and flow runs start in the copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.infra.prefect_server import PrefectServer

pytestmark = pytest.mark.scale

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EXPECTED = {
    "requirements-to-deployment/default": "flows/pipeline.py:requirements_to_deployment",
    "redeploy/redeploy": "flows/redeploy.py:redeploy",
    "verify-live-sites/verify-live-sites": "flows/verify_live.py:verify_live_sites",
}


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean copy of the checkout: sources and prefect.yaml, no venv, caches or local state."""
    dest = tmp_path_factory.mktemp("checkout") / "pombolt"
    shutil.copytree(
        ROOT,
        dest,
        ignore=shutil.ignore_patterns(".venv", ".cache", ".git", "__pycache__", "*.egg-info", ".pytest_cache", "bench"),
    )
    return dest


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, (
        f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


def test_prefect_yaml_defines_the_pool_by_anchor_and_the_three_deployments() -> None:
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert config["definitions"]["work_pools"]["process"]["name"] == "pombolt"
    names = [d["name"] for d in config["deployments"]]
    assert names == ["default", "redeploy", "verify-live-sites"]
    for deployment in config["deployments"]:
        assert deployment["work_pool"]["name"] == "pombolt"  # the anchor was resolved into every deployment
    assert config["pull"][0]["prefect.deployments.steps.set_working_directory"]["directory"] == "{{ checkout.stdout }}"


def test_prefect_deploy_all_from_a_clean_checkout(server: PrefectServer, checkout: Path, tmp_path: Path) -> None:
    env = {**os.environ, **server.client_env(tmp_path / "client-home"), "POMBOLT_DATA_DIR": str(tmp_path / "data")}
    env.pop("PREFECT_LOCAL_STORAGE_PATH", None)
    _run([str(BIN / "pombolt"), "init"], checkout, env)
    _run([str(BIN / "prefect"), "--no-prompt", "deploy", "--all"], checkout, env, timeout=180)

    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(server.api_url) as client:
        found = {name: client.read_deployment_by_name(name) for name in EXPECTED}
        pool = client.read_work_pool("pombolt")
    assert pool.type == "process"
    for name, deployment in found.items():
        assert deployment.entrypoint == EXPECTED[name]
        assert deployment.work_pool_name == "pombolt"
        # flow runs start in the checkout the deployments were made from
        assert deployment.pull_steps == [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(checkout)}}
        ]
    schedules = found["verify-live-sites/verify-live-sites"].schedules
    assert [s.schedule.cron for s in schedules] == ["*/15 * * * *"]  # type: ignore[union-attr]
    assert not found["requirements-to-deployment/default"].schedules
    assert "run_id" in found["requirements-to-deployment/default"].parameter_openapi_schema["properties"]
