"""Helpers the deployment targets share: the deploy result, deleted files, content types (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect.filesystems import LocalFileSystem

from blocks.targets._common import SNAPSHOT_KEY, content_type, deleted_since, deploy_result
from blocks.targets.base import DeployRequest, SiteState
from core.snapshots import SnapshotStore
from tests.contracts import samples


def request(snapshot_id: str = "s2", run_id: str = "run-2") -> DeployRequest:
    return DeployRequest(tenant_id="t1", project_id="p1", project_name="P", run_id=run_id, site_snapshot_id=snapshot_id)


def test_a_deploy_that_creates_the_site_records_its_run_and_snapshot() -> None:
    result = deploy_result(
        request(),
        SiteState(extra={"kept": 1}),
        site_id="site",
        live_url="https://x/",
        deploy_id="d1",
        created=True,
        uploaded=(2, 30),
        files_deleted=1,
        requests=4,
        extra={"release": "r"},
    )
    assert result.state.created_by_run == "run-2" and result.created
    assert result.state.extra == {"kept": 1, "release": "r", SNAPSHOT_KEY: "s2"}
    assert (result.files_uploaded, result.bytes_uploaded, result.files_deleted, result.requests) == (2, 30, 1, 4)
    assert result.state.site_id == "site" and result.state.url == result.live_url == "https://x/"


def test_a_later_deploy_keeps_the_creating_run() -> None:
    before = SiteState(site_id="site", created_by_run="run-1", extra={SNAPSHOT_KEY: "s1"})
    result = deploy_result(request(), before, site_id="site", live_url="https://x/", deploy_id="d2", created=False)
    assert result.state.created_by_run == "run-1" and not result.created
    assert result.state.extra[SNAPSHOT_KEY] == "s2"


def test_deleted_since_counts_files_the_previous_snapshot_had(tmp_path: Path) -> None:
    snapshots = SnapshotStore(LocalFileSystem(basepath=str(tmp_path)), "t1")
    first = samples.store(snapshots, samples.small_site())
    second = samples.store(snapshots, samples.changed(samples.small_site(), {"styles.css": None, "app.js": None}))
    manifest = snapshots.manifest(second)
    assert deleted_since(snapshots, SiteState(extra={SNAPSHOT_KEY: first}), manifest) == 2
    assert deleted_since(snapshots, SiteState(extra={SNAPSHOT_KEY: second}), manifest) == 0
    assert deleted_since(snapshots, SiteState(), manifest) == 0
    assert deleted_since(snapshots, SiteState(extra={SNAPSHOT_KEY: "0" * 64}), manifest) == 0  # unknown: 0


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a/b/INDEX.HTML", "text/html; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("x.webmanifest", "application/manifest+json"),
        ("fonts/x.woff2", "font/woff2"),
        ("noext", "application/octet-stream"),
    ],
)
def test_content_types(path: str, expected: str) -> None:
    assert content_type(path) == expected
