"""Phase build: a project without a build script is its own site; an npm project's output folder is the site.
Either way the result names the site's index.html hash, which verify compares with what is served."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from core.files import GeneratedFile
from core.models import Run
from core.runtime import get_snapshots, get_store
from core.settings import get_settings
from tasks._phase import Reuse
from tasks.build import build, site_kept
from tests.conftest import require_tool
from tests.unit.tasks.conftest import TENANT

INDEX = "<!doctype html><h1>site</h1>\n"


def test_a_project_without_a_build_script_is_its_own_site(queue_run: Callable[..., Run]) -> None:
    source = get_snapshots(TENANT).put([GeneratedFile.text("index.html", INDEX), GeneratedFile.text("a.css", "")])
    site = build.fn(queue_run().id, TENANT, source.snapshot_id)
    assert (site.snapshot_id, site.file_count, site.built) == (source.snapshot_id, 2, False)
    assert site.index_sha256 == hashlib.sha256(INDEX.encode()).hexdigest()


def test_a_site_without_an_entry_page_says_so(queue_run: Callable[..., Run]) -> None:
    source = get_snapshots(TENANT).put([GeneratedFile.text("README.md", "no page")])
    assert build.fn(queue_run().id, TENANT, source.snapshot_id).index_sha256 is None


def test_an_npm_project_is_built_and_its_output_folder_is_the_site(queue_run: Callable[..., Run]) -> None:
    require_tool("node", "the build script runs with node")
    require_tool("npm", "npm runs the build script")
    script = "const fs=require('fs');fs.mkdirSync('dist');fs.writeFileSync('dist/index.html', '<h1>built</h1>');"
    package = {"name": "p", "version": "1.0.0", "private": True, "scripts": {"build": "node build.js"}}
    files = [GeneratedFile.text("package.json", json.dumps(package)), GeneratedFile.text("build.js", script)]
    source = get_snapshots(TENANT).put(files)
    site = build.fn(queue_run().id, TENANT, source.snapshot_id)
    assert site.built and site.snapshot_id != source.snapshot_id and site.file_count == 1
    assert site.index_sha256 == hashlib.sha256(b"<h1>built</h1>").hexdigest()


def test_a_cached_site_counts_only_while_its_snapshot_is_in_storage(queue_run: Callable[..., Run]) -> None:
    run = queue_run()
    snapshots = get_snapshots(TENANT)
    site = build.fn(run.id, TENANT, snapshots.put([GeneratedFile.text("index.html", INDEX)]).snapshot_id)
    reuse = Reuse(snapshots=snapshots, project=get_store().get_project(run.project_id))
    assert site_kept(site, reuse)
    (Path(get_settings().storage_dir) / snapshots.manifest_key(site.snapshot_id)).unlink()
    assert not site_kept(site, reuse)
