"""Phase build: a project without a build script is its own site; an npm project's output folder is the site.
Either way the result names the site's index.html hash, which verify compares with what is served.

The build runs in the sandbox (tasks/_build/sandbox.py) for the run's tenant: the attack found at main — a build.js
that asks the local Prefect API for every Block document with ``include_secrets`` — runs here against the
harness's real Prefect API and gets nothing; where bubblewrap is missing the phase refuses the build unless
the local CLI tenant opted out.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prefect.blocks.core import Block

from core.errors import ConfigError
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


def _npm_source(script: str) -> str:
    package = {"name": "p", "version": "1.0.0", "private": True, "scripts": {"build": "node build.js"}}
    files = [GeneratedFile.text("package.json", json.dumps(package)), GeneratedFile.text("build.js", script)]
    return get_snapshots(TENANT).put(files).snapshot_id


SECRET = "pombolt-phase-secret-5d1e"

STEAL_JS = """
const fs = require('fs');
const write = (text) => { fs.mkdirSync('dist', {recursive: true}); fs.writeFileSync('dist/index.html', text); };
fetch(__API__ + '/block_documents/filter', {method: 'POST', headers: {'content-type': 'application/json'},
                                               body: JSON.stringify({include_secrets: true})})
  .then((r) => r.text()).then(write, (e) => write('ERR ' + ((e.cause && e.cause.code) || e.message)));
"""


def test_a_build_cannot_read_block_secrets_from_the_prefect_api(
    queue_run: Callable[..., Run], save: Callable[[str, Block], str]
) -> None:
    """The attack found at main, against the harness's real Prefect API and a saved Secret Block."""
    require_tool("node", "the build script runs with node")
    require_tool("npm", "npm runs the build script")
    require_tool("bwrap", "builds run in a bubblewrap sandbox (apt-get install bubblewrap)")
    from prefect.blocks.system import Secret
    from prefect.settings import PREFECT_API_URL

    save("leaky", Secret(value=SECRET))
    api = str(PREFECT_API_URL.value()).rstrip("/")
    control = httpx.post(f"{api}/block_documents/filter", json={"include_secrets": True}, timeout=30)
    assert SECRET in control.text, "control: outside the sandbox the same request returns the secret"

    source = _npm_source(STEAL_JS.replace("__API__", json.dumps(api)))
    site = build.fn(queue_run().id, TENANT, source)
    (page,) = get_snapshots(TENANT).files(site.snapshot_id)
    assert SECRET.encode() not in page.content
    assert page.content.startswith(b"ERR "), page.content[:200]


@pytest.fixture
def no_bwrap(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """PATH with node, npm and sh but no bwrap, in a folder the build user (as root: nobody) can reach."""
    require_tool("node", "the build script runs with node")
    require_tool("npm", "npm runs the build script")
    folder = Path(tempfile.mkdtemp(prefix="pombolt-tools-"))
    folder.chmod(0o755)
    for tool in ("node", "npm", "sh"):
        (folder / tool).symlink_to(shutil.which(tool) or f"/bin/{tool}")
    monkeypatch.setenv("PATH", str(folder))
    yield
    shutil.rmtree(folder, ignore_errors=True)


INDEX_JS = "const fs=require('fs');fs.mkdirSync('dist');fs.writeFileSync('dist/index.html', '<h1>built</h1>');"


def test_without_bwrap_the_build_phase_refuses(queue_run: Callable[..., Run], no_bwrap: None) -> None:
    with pytest.raises(ConfigError, match="apt-get install bubblewrap"):
        build.fn(queue_run().id, TENANT, _npm_source(INDEX_JS))


def test_without_bwrap_the_local_cli_may_opt_out(
    queue_run: Callable[..., Run], no_bwrap: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert TENANT == "local"
    monkeypatch.setenv("POMBOLT_BUILD_SANDBOX", "off")
    get_settings.cache_clear()
    try:
        site = build.fn(queue_run().id, TENANT, _npm_source(INDEX_JS))
    finally:
        monkeypatch.delenv("POMBOLT_BUILD_SANDBOX")
        get_settings.cache_clear()
    assert site.built and site.index_sha256 == hashlib.sha256(b"<h1>built</h1>").hexdigest()
