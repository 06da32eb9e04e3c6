"""Iterating on a live app on the fake GitHub and the fake Netlify: create, change, change, rollback, change."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect_github import GitHubCredentials
from pydantic import SecretStr

from blocks.catalog import save_block
from blocks.repositories.github import GitHubRepositoryTarget
from blocks.targets.netlify import NetlifySite
from core.runtime import get_snapshots, get_store, reset_caches
from core.settings import get_settings
from tests.e2e.test_blocks import calls
from tests.e2e.test_pipeline import pombolt, save_counting_generator
from tests.fakes.github import FakeGitHub, name_of
from tests.fakes.netlify import FakeNetlify
from tests.fakes.openai import FakeOpenAI, project_json
from usecases.setup import ensure_limits

GH_TOKEN = "ghp_" + "Iter" * 9
NF_TOKEN = "nfp_" + "Iter" * 9
LLM_KEY = "sk-pombolt-iterate-" + "x" * 16
UPLOADS = r"/api/v1/deploys/.+/files/.+"


@pytest.fixture
def fakes(data_dir: Path) -> Iterator[tuple[FakeGitHub, FakeNetlify]]:
    ensure_limits()
    with FakeGitHub(users={GH_TOKEN: "octo"}) as gh, FakeNetlify(tokens={NF_TOKEN}) as nf:
        tenant = get_settings().default_tenant
        store = get_store()
        store.ensure_tenant(tenant)
        save_block(
            store,
            tenant,
            "gh",
            GitHubRepositoryTarget(credentials=GitHubCredentials(token=SecretStr(GH_TOKEN)), api_url=gh.url),
        )
        save_block(
            store,
            tenant,
            "nf",
            NetlifySite(token=SecretStr(NF_TOKEN), api_url=nf.api_url, poll_interval=0.05, poll_max_interval=0.2),
        )
        yield gh, nf


def served_sha(url: str) -> str:
    return hashlib.sha256(httpx.get(url, timeout=10).content).hexdigest()


def index_sha(run_id: str) -> str:
    run = get_store().get_run(run_id)
    return get_snapshots(run.tenant_id).manifest(str(run.site_snapshot_id)).by_path()["index.html"].sha256


def test_iterations_on_github_and_netlify(fakes: tuple[FakeGitHub, FakeNetlify], tmp_path: Path) -> None:
    gh, nf = fakes
    counter = save_counting_generator(tmp_path)
    args = ["--generator", "counting", "--repository", "gh", "--target", "nf", "--json"]
    code, v1, err = pombolt("run", "a pomodoro timer", "--name", "remote-iter", *args)
    assert code == 0, err
    reports = [v1]
    for request in ("add a task list", "and dark mode"):
        code, report, err = pombolt("change", "remote-iter", request, "--json")
        assert code == 0, err
        assert served_sha(report["live_url"]) == index_sha(report["run_id"])
        reports.append(report)
    assert calls(counter) == 3

    uploads_before = nf.count("PUT", UPLOADS)
    code, back, err = pombolt("rollback", "remote-iter", "1", "--json")
    assert code == 0, err
    assert calls(counter) == 3, "a rollback makes no generator call"
    assert served_sha(back["live_url"]) == index_sha(v1["run_id"])
    v1_files = get_snapshots("local").manifest(str(get_store().get_run(v1["run_id"]).site_snapshot_id)).by_path()
    v3_files = (
        get_snapshots("local").manifest(str(get_store().get_run(reports[-1]["run_id"]).site_snapshot_id)).by_path()
    )
    differing = {p for p, e in v1_files.items() if p not in v3_files or v3_files[p].sha256 != e.sha256}
    assert nf.count("PUT", UPLOADS) - uploads_before <= len(differing), "only files that differ are uploaded"
    reports.append(back)

    code, v5, err = pombolt("change", "remote-iter", "add a counter", "--json")
    assert code == 0, err
    reports.append(v5)
    assert calls(counter) == 4

    full = name_of(v5["repository_url"])
    assert gh.history(full) == [r["commit_sha"] for r in reversed(reports)], "one linear history, one commit each"
    assert len({r["live_url"] for r in reports}) == 1 and len(nf.sites) == 1, "same site throughout"
    assert len({r["repository_url"] for r in reports}) == 1


def _versioned_app(body: dict[str, Any]) -> str:
    """A model whose page names the last request it was given (so every change is a real change)."""
    prompt = next((m["content"] for m in reversed(body["messages"]) if m.get("role") == "user"), "")
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:12]
    page = f"<!doctype html>\n<html><head><title>App</title></head><body><h1>App {digest}</h1></body></html>\n"
    return project_json({"index.html": page}, action="modify" if "index.html" in prompt else "add")


def test_iterations_with_the_fake_llm(fakes: tuple[FakeGitHub, FakeNetlify], monkeypatch: pytest.MonkeyPatch) -> None:
    gh, _nf = fakes
    with FakeOpenAI(tokens={LLM_KEY}) as llm:
        llm.responder = _versioned_app
        monkeypatch.setenv("OPENAI_BASE_URL", llm.api_url)
        monkeypatch.setenv("OPENAI_API_KEY", LLM_KEY)
        monkeypatch.setenv("POMBOLT_LLM_MODEL", "gpt-test")
        reset_caches()
        args = ["--generator", "openai", "--repository", "gh", "--target", "nf", "--json"]
        code, v1, err = pombolt("run", "a focus timer", "--name", "llm-iter", *args)
        assert code == 0, err
        reports = [v1]
        for request in ("add a task list", "and dark mode"):
            code, report, err = pombolt("change", "llm-iter", request, "--json")
            assert code == 0, err
            assert report["spend"]["llm_calls"] == 1
            reports.append(report)
        paid = llm.paid()
        code, back, err = pombolt("rollback", "llm-iter", "1", "--json")
        assert code == 0, err
        assert llm.paid() == paid and back["spend"]["llm_calls"] == 0, "a rollback makes zero LLM calls"
        assert served_sha(back["live_url"]) == index_sha(v1["run_id"])
        reports.append(back)
        code, v5, err = pombolt("change", "llm-iter", "bigger buttons", "--json")
        assert code == 0, err
        reports.append(v5)
        assert served_sha(v5["live_url"]) == index_sha(v5["run_id"])
    assert gh.history(name_of(v5["repository_url"])) == [r["commit_sha"] for r in reversed(reports)]
    assert len({r["live_url"] for r in reports}) == 1
