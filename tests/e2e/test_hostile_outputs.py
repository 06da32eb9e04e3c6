"""Hostile generated output through the whole pipeline (issue 11): the real CLI, real Prefect, real git.

A test-only generator Block returns one entry of the hostile corpus (tests/security/corpus.py). A refused
entry must end the run ``failed`` in phase ``generate`` with ``output.path_rule`` and a message naming the
path and the rule, having written nothing outside the data dir and created no commit and no site. Every
corpus entry is refused at unit level (tests/unit/core/test_hostile_paths.py); here a few representative
ones (an escape, a symlink, a workflow, a huge file) prove the pipeline wiring, plus two runs that must
succeed: hostile-looking page code with a workflow the project allows, and a hostile build script.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import pytest
from pydantic import Field
from typer.testing import CliRunner

from blocks.catalog import save_block
from blocks.generators.base import GenerationRequest, GenerationResult, Generator
from core.runtime import get_snapshots, get_store, reset_caches
from core.settings import get_settings
from ops.cli import app
from tasks._build.env import work_parent
from tests.conftest import require_tool
from tests.security.corpus import (
    BY_NAME,
    HOSTILE_APP_HTML,
    WORKFLOW_YAML,
    hostile_app,
    hostile_build_project,
)

pytestmark = pytest.mark.e2e

REQ = "a guestbook page"
runner = CliRunner()
TOKENS = {
    "GITHUB_TOKEN": "ghp_E2EHOSTILE000000000000000000000000001",
    "NETLIFY_AUTH_TOKEN": "nfp_E2EHOSTILE0000000000000000000002",
    "OPENAI_API_KEY": "sk-E2EHOSTILE000000000000000000000003",
    "POMBOLT_TEST_TOKEN": "pombolt-e2e-hostile-secret-4",
}
NETRC_TOKEN = "netrc-E2EHOSTILE-password-5"
GIT_CREDENTIAL_TOKEN = "ghp_E2EHOSTILEgitcredentials000000000006"


class HostileGenerator(Generator):
    """Test-only generator: returns the hostile corpus entry named by ``entry``."""

    _block_type_name = "Pom-Bolt Test Hostile Generator"
    _block_type_slug = "pombolt-test-hostile-generator"

    entry: str = Field(description="A corpus entry name, or 'app+workflow' or 'build'.")

    def generate(self, request: GenerationRequest) -> GenerationResult:
        if self.entry == "app+workflow":
            files = hostile_app(with_workflow=True)
        elif self.entry == "build":
            files = hostile_build_project()
        else:
            files = BY_NAME[self.entry].files()  # may raise PathRuleViolation itself, as a parser would
        return GenerationResult(files=files, label=f"hostile corpus: {self.entry}")


@pytest.fixture(autouse=True)
def isolated(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Own data dir; the working directory and a sentinel folder sit beside it, watched for changes."""
    cwd = tmp_path / "cwd" / "a" / "b"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)  # a relative escape ('../../x') from the process's cwd would land in tmp_path
    (tmp_path / "sentinel").mkdir()
    (tmp_path / "sentinel" / "keep.txt").write_text("keep")
    yield data_dir
    from blocks.targets.static_host import stop

    stop(get_settings())


def outside_data(tmp_path: Path) -> dict[str, tuple[int, int]]:
    """Every path under tmp_path outside the data dir, with size and mtime."""
    return {
        p.relative_to(tmp_path).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in tmp_path.rglob("*")
        if p.relative_to(tmp_path).parts[0] != "data"
    }


def pombolt(*args: str) -> tuple[int, dict[str, Any], str]:
    result = runner.invoke(app, list(args))
    assert result.stdout.strip(), result.stderr
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def save_hostile(entry: str) -> None:
    store = get_store()
    tenant = get_settings().default_tenant
    store.ensure_tenant(tenant)
    save_block(store, tenant, "hostile", HostileGenerator(entry=entry))


def subdirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


@pytest.mark.parametrize("name", ["parent-escape-pwn", "symlink", "workflow", "huge-file"])
def test_a_hostile_output_fails_generate_naming_path_and_rule_and_changes_nothing(
    name: str, tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = BY_NAME[name]
    for var, value in entry.env.items():
        monkeypatch.setenv(var, value)
    reset_caches()
    save_hostile(name)
    before = outside_data(tmp_path)

    code, report, err = pombolt("run", REQ, "--name", f"hostile-{name}", "--generator", "hostile", "--json")

    assert code == 1, err
    assert report["status"] == "failed"
    error = report["error"]
    assert (error["phase"], error["code"], error["retryable"]) == ("generate", "output.path_rule", False), error
    assert f"generated file '{entry.path}' breaks rule '{entry.rule}'" in error["message"]
    assert [p["name"] for p in report["phases"]] == ["preflight", "generate"]
    assert (report["repository_url"], report["commit_sha"], report["live_url"]) == (None, None, None)

    store = get_store()
    project = store.get_project(report["project_id"])
    assert project.repository_state == {} and project.target_state == {}
    assert store.versions(project.id) == []
    assert subdirs(data_dir / "repos") == [], "no repository may be created"
    assert subdirs(data_dir / "sites") == [], "no site may be created"
    assert outside_data(tmp_path) == before, "nothing outside the data dir may change"
    offending = PurePosixPath(entry.path).name
    assert not [p for p in data_dir.rglob(offending) if p.is_file()], "the offending file must not be written"


def test_an_allowed_workflow_and_hostile_page_code_are_the_users_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POMBOLT_ALLOW_WORKFLOWS", "true")
    reset_caches()
    save_hostile("app+workflow")

    code, report, err = pombolt("run", REQ, "--name", "hostile-allowed", "--generator", "hostile", "--json")

    assert code == 0, (err, report.get("error"))
    assert report["status"] == "verified"
    assert get_store().get_project(report["project_id"]).allow_workflows is True
    dest = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", report["repository_url"], str(dest)], check=True, capture_output=True)
    assert (dest / ".github" / "workflows" / "ci.yml").read_bytes() == WORKFLOW_YAML
    assert (dest / "index.html").read_bytes() == HOSTILE_APP_HTML
    page = httpx.get(report["live_url"], timeout=10)
    assert page.content == HOSTILE_APP_HTML, "the user's page is served byte for byte, not 'sanitised'"


def test_a_hostile_build_script_leaks_no_token_into_the_site(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_tool("node", "the hostile build script runs with node")
    require_tool("npm", "builds run through npm")
    home = tmp_path / "real-home"
    home.mkdir()
    (home / ".netrc").write_text(f"machine github.com login x password {NETRC_TOKEN}\n")
    (home / ".git-credentials").write_text(f"https://x:{GIT_CREDENTIAL_TOKEN}@github.com\n")
    monkeypatch.setenv("HOME", str(home))
    for var, value in TOKENS.items():
        monkeypatch.setenv(var, value)
    save_hostile("build")
    before = outside_data(tmp_path)

    code, report, err = pombolt("run", REQ, "--name", "hostile-build", "--generator", "hostile", "--json")

    assert code == 0, (err, report.get("error"))
    run = get_store().get_run(report["run_id"])
    assert run.site_snapshot_id, "a verified run has a site snapshot"
    site = {f.path: f.content for f in get_snapshots(run.tenant_id).files(run.site_snapshot_id)}
    assert list(site) == ["index.html"]
    page = httpx.get(report["live_url"], timeout=10).content
    assert page == site["index.html"] and b"loot" in page
    loot = json.loads(page.split(b"<pre>", 1)[1].split(b"</pre>", 1)[0].replace(b"&lt;", b"<"))
    assert not set(TOKENS) & set(loot["env"]), "no variable of the worker reaches the build"
    parent = work_parent(None)
    assert loot["env"]["HOME"].startswith(str(parent / "pombolt-build-"))
    for path, got in loot["reads"].items():
        if path.startswith(loot["env"]["HOME"]):
            assert got == "ERR ENOENT", (path, got)
    everything = page + json.dumps(report).encode() + (run.error_message or "").encode()
    for token in [*TOKENS.values(), NETRC_TOKEN, GIT_CREDENTIAL_TOKEN]:
        assert token.encode() not in everything
    assert outside_data(tmp_path) == before, "the build wrote nothing outside the data dir"
    work = Path(loot["env"]["HOME"]).parent
    assert not work.exists(), "the build's work dir is removed"
