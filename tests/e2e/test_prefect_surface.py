"""What a run leaves in Prefect: artifacts for the UI, and what `pombolt init` creates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from core.runtime import get_store
from core.settings import get_settings
from tests.e2e.test_pipeline import pombolt


@pytest.fixture(autouse=True)
def isolated(data_dir: Path) -> Iterator[Path]:
    yield data_dir
    from blocks.targets.static_host import stop

    stop(get_settings())


def test_a_run_keeps_links_a_summary_and_progress_in_the_prefect_ui() -> None:
    code, report, err = pombolt("run", "a stopwatch", "--name", "ui", "--json")
    assert code == 0, err
    run = get_store().get_run(report["run_id"])
    assert run.flow_run_id
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(UUID(run.flow_run_id))
        assert flow_run.parameters == {"run_id": run.id}, "parameters carry the run id only"
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[UUID(run.flow_run_id)]))
        )
    keys = {a.key: (a.type, str(a.data)) for a in artifacts}
    project_key, run_key = run.project_id[:12], run.id[:12]
    summary_type, summary = keys[f"summary-{run_key}"]
    assert summary_type == "markdown" and report["live_url"] in summary and "verified" in summary
    assert report["live_url"] in keys[f"live-site-{project_key}"][1]
    assert report["repository_url"] in keys[f"repository-{project_key}"][1]
    progress_type, progress = keys[f"progress-{run_key}"]
    assert progress_type == "progress" and float(progress) == 100.0


def test_init_registers_blocks_the_work_pool_and_concurrency_limits() -> None:
    code, _, err = pombolt("init")
    assert code == 0, err
    with get_client(sync_client=True) as client:
        pool = client.read_work_pool("pombolt")
        limits = {lim.name for lim in client.read_global_concurrency_limits(limit=100)}
        slugs = {bt.slug for bt in client.read_block_types()}
        zombie = client.read_automations_by_name("pombolt-zombie-flow-runs")
    assert pool.type == "process"
    assert len(zombie) == 1, "init creates the crash detector the reconciler relies on"
    assert {"github-api", "netlify-api", "cloudflare-api", "vercel-api"} <= limits
    assert {"pombolt-offline-generator", "pombolt-local-git", "pombolt-local-static-site"} <= slugs
    code, _, err = pombolt("init")
    assert code == 0, "init is idempotent: " + err
