"""Phase deploy: the target Block makes the live site equal the site snapshot; the project remembers what is live."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from prefect.blocks.core import Block

from blocks.targets.base import SiteState
from blocks.targets.local_static import LocalStaticSite
from core.files import GeneratedFile
from core.models import Run
from core.runtime import get_snapshots, get_store
from tasks.deploy import deploy
from tests.unit.tasks.conftest import TENANT


def test_the_site_snapshot_is_served_and_the_project_remembers_it(
    queue_run: Callable[..., Run], save: Callable[[str, Block], str], sites: tuple[Path, str]
) -> None:
    root, url = sites
    save("site", LocalStaticSite(root=str(root), base_url=url))
    run = queue_run(target_ref="site")
    site = get_snapshots(TENANT).put([GeneratedFile.text("index.html", "<h1>live</h1>")]).snapshot_id

    result = deploy.fn(run.id, TENANT, run.project_id, site, "site")
    assert result.live_url.startswith(url) and result.files_uploaded == 1
    assert httpx.get(result.live_url, timeout=10).text == "<h1>live</h1>"
    state = SiteState.model_validate(get_store().get_project(run.project_id).target_state)
    assert (state.live_snapshot, state.live_url, state.created_by_run) == (site, result.live_url, run.id)

    again = deploy.fn(queue_run("again", target_ref="site").id, TENANT, run.project_id, site, "site")
    assert again.live_url == result.live_url and again.files_uploaded == 0  # the same site, nothing uploaded
