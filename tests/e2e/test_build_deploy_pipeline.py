"""The pipeline with an npm build and with a saved Netlify target (a stateful fake Netlify on 127.0.0.1).

Both run through the real CLI under the session's Prefect harness.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from blocks.catalog import save_block
from blocks.generators.base import GenerationRequest, GenerationResult, Generator
from blocks.targets.netlify import NetlifySite
from core.files import GeneratedFile
from core.runtime import get_snapshots, get_store
from core.settings import get_settings
from ops.cli import app
from tests.conftest import require_tool
from tests.fakes.netlify import FakeNetlify

pytestmark = pytest.mark.e2e

TOKEN = "nfp_e2e_fake_token_abcdef0123456789"
runner = CliRunner()

BUILD_JS = """const fs = require('fs');
fs.mkdirSync('dist', {recursive: true});
const src = fs.readFileSync('src/page.html', 'utf8');
fs.writeFileSync('dist/index.html', src.replace('%BUILT%', 'built by node ' + process.version.startsWith('v')));
fs.writeFileSync('dist/env.txt', Object.keys(process.env).sort().join('\\n'));
"""


class NpmProjectGenerator(Generator):
    """Test-only generator: a project whose package.json has a plain-node build script."""

    _block_type_name = "Pom-Bolt Test Npm Project Generator"
    _block_type_slug = "pombolt-test-npm-generator"

    def generate(self, request: GenerationRequest) -> GenerationResult:
        package = {"name": "npm-e2e", "version": "1.0.0", "private": True, "scripts": {"build": "node build.js"}}
        return GenerationResult(
            files=[
                GeneratedFile.text("package.json", json.dumps(package, indent=2) + "\n"),
                GeneratedFile.text("build.js", BUILD_JS),
                GeneratedFile.text("src/page.html", "<!doctype html><title>npm</title><h1>%BUILT%</h1>\n"),
            ],
            label="test npm project",
        )


@pytest.fixture(autouse=True)
def isolated(data_dir: Path) -> Iterator[Path]:
    yield data_dir
    from blocks.targets.static_host import stop

    stop(get_settings())


def pombolt(*args: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, list(args))
    assert result.stdout.strip(), result.stderr
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


def _save(name: str, block: Any) -> None:
    store = get_store()
    tenant = get_settings().default_tenant
    store.ensure_tenant(tenant)
    save_block(store, tenant, name, block)


def test_pombolt_run_with_a_saved_netlify_target(monkeypatch: pytest.MonkeyPatch) -> None:
    from usecases.setup import ensure_limits

    ensure_limits()  # 'netlify-api' must exist: the deploy takes a slot with strict=True
    monkeypatch.setenv("NETLIFY_AUTH_TOKEN", "must-not-be-used-from-the-environment")
    with FakeNetlify(tokens={TOKEN}) as fake:
        block = NetlifySite(token=SecretStr(TOKEN), api_url=fake.api_url, poll_interval=0.05, poll_max_interval=0.2)
        _save("acme-netlify", block)
        code, report = pombolt(
            "run",
            "a counter app",
            "--name",
            "netlify-e2e",
            "--repository",
            "none",
            "--target",
            "acme-netlify",
            "--json",
        )
        assert code == 0, report
        assert report["status"] == "verified"
        assert report["live_url"].startswith(f"{fake.url}/sites-live/")
        assert len(fake.sites) == 1
        first_uploads = fake.count("PUT", r"/api/v1/deploys/.+/files/.+")
        assert first_uploads > 0

        code, again = pombolt("run", "a counter app", "--name", "netlify-e2e", "--json")
        assert code == 0 and again["status"] == "verified", again
        assert again["live_url"] == report["live_url"]
        assert len(fake.sites) == 1  # reused, not a new site per deploy
        assert fake.count("PUT", r"/api/v1/deploys/.+/files/.+") == first_uploads  # nothing uploaded again
        assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in fake.requests(path_re=r"/api/v1/.*"))
        served = httpx.get(again["live_url"], timeout=5).content
        run = get_store().get_run(again["run_id"])
        assert run.site_snapshot_id == run.snapshot_id  # no build script: the project is deployed untouched
        manifest = get_snapshots(run.tenant_id).manifest(str(run.site_snapshot_id))
        assert hashlib.sha256(served).hexdigest() == manifest.by_path()["index.html"].sha256


def test_an_npm_project_is_built_and_its_output_deployed(monkeypatch: pytest.MonkeyPatch) -> None:
    require_tool("node", "the project's build script runs with node")
    require_tool("npm", "the build runs 'npm run build'")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_e2e_secret_never_in_builds_000000")
    _save("npm-gen", NpmProjectGenerator())
    code, report = pombolt(
        "run", "an npm project", "--name", "npm-e2e", "--generator", "npm-gen", "--repository", "none", "--json"
    )
    assert code == 0, report
    phases = {p["name"]: p for p in report["phases"]}
    assert phases["build"]["status"] == "completed"
    run = get_store().get_run(report["run_id"])
    assert run.site_snapshot_id and run.site_snapshot_id != run.snapshot_id
    site = {f.path: f.content for f in get_snapshots(run.tenant_id).files(run.site_snapshot_id)}
    assert set(site) == {"index.html", "env.txt"}  # the output folder, not the sources
    assert b"built by node true" in site["index.html"]
    assert b"GITHUB_TOKEN" not in site["env.txt"] and b"POMBOLT_" not in site["env.txt"]
    assert httpx.get(report["live_url"], timeout=5).content == site["index.html"]
