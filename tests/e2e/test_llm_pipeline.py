"""The pipeline with ``--generator openai`` against a stateful fake OpenAI-compatible server.

Through the real CLI, real Prefect (the session harness), the real openai SDK and real HTTP. Every test
asserts the exact number of calls the fake received; the API key must appear nowhere we keep things.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from core.runtime import reset_caches
from core.settings import get_settings
from ops.cli import app
from tests.conftest import require_tool
from tests.fakes.openai import FakeOpenAI, app_responder

KEY = "sk-pombolt-E2E-7f3a9c1d5b2e8h4k"
CHAT = r"/v1/chat/completions"
runner = CliRunner()

GOOD_JS = (
    "const button = document.getElementById('go');\n"
    "button.addEventListener('click', () => { button.textContent = 'Done'; });\n"
)
APP = {
    "index.html": '<!doctype html>\n<html><head><title>Focus</title><link rel="stylesheet" href="styles.css"></head>\n'
    '<body><h1>Focus timer</h1><button id="go">Start</button><script src="app.js"></script></body></html>\n',
    "styles.css": "body { font-family: sans-serif; }\n",
    "app.js": "const button = document.getElementById('go');\nbutton.addEventListener('click', () => {\n",  # broken
}


@pytest.fixture
def fake(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    with FakeOpenAI(tokens={KEY}) as svc:
        monkeypatch.setenv("OPENAI_BASE_URL", svc.api_url)
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("POMBOLT_LLM_MODEL", "gpt-test")
        reset_caches()
        yield svc
        from blocks.targets.static_host import stop

        stop(get_settings())


def pombolt(*args: str) -> tuple[int, dict[str, Any], str]:
    result = runner.invoke(app, list(args))
    lines = result.stdout.strip().splitlines()
    return result.exit_code, json.loads(lines[-1]) if lines else {}, result.stdout + result.stderr


def spent(fake: FakeOpenAI) -> dict[str, int]:
    ok = [c for c in fake.completions if c.status == 200]
    return {
        "llm_calls": len(ok),
        "prompt_tokens": sum(c.usage["prompt_tokens"] for c in ok),
        "completion_tokens": sum(c.usage["completion_tokens"] for c in ok),
    }


def test_generates_repairs_deploys_and_never_pays_twice(fake: FakeOpenAI, data_dir: Path) -> None:
    require_tool("node", "node --check finds the broken app.js that the repair round fixes")
    fake.responder = app_responder(APP, fixes={"app.js": GOOD_JS})
    requirements = "a focus timer with one start button"

    code, first, out = pombolt("run", requirements, "--name", "focus", "--generator", "openai", "--json")
    assert code == 0, out
    assert first["status"] == "verified"
    assert fake.calls() == 2  # one generation, one repair round for app.js
    assert fake.count("GET", r"/v1/models") == 1  # preflight, before any paid call
    assert "failed automatic checks" in fake.completions[1].prompt and "app.js" in fake.completions[1].prompt
    assert first["spend"] == spent(fake) and first["spend"]["llm_calls"] == 2
    assert first["spend"]["prompt_tokens"] > 0 and first["spend"]["completion_tokens"] > 0
    page = httpx.get(first["live_url"], timeout=10)
    assert page.status_code == 200 and "Focus timer" in page.text
    live_js = httpx.get(first["live_url"].rstrip("/").removesuffix("/index.html") + "/app.js", timeout=10)
    assert live_js.text == GOOD_JS

    code, again, out = pombolt("run", requirements, "--name", "focus", "--json")
    assert code == 0, out
    assert fake.calls() == 2, "a re-run must not call the LLM again"
    assert again["spend"] == {"llm_calls": 0, "prompt_tokens": 0, "completion_tokens": 0}
    assert {p["name"]: p["cached"] for p in again["phases"]}["generate"] is True

    # the key was sent to the endpoint, and kept nowhere
    assert all(e.headers["Authorization"] == f"Bearer {KEY}" for e in fake.requests())
    assert KEY not in out and KEY not in json.dumps([first, again])
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        logs = client.read_logs()
        artifacts = client.read_artifacts()
    assert logs, "the runs wrote Prefect logs"
    assert not [log.message for log in logs if KEY in log.message]
    assert not [a.key for a in artifacts if KEY in json.dumps(a.model_dump(mode="json"), default=str)]
    summary = [a for a in artifacts if a.key == f"summary-{first['run_id'][:12]}"]
    assert summary and "LLM calls: 2" in str(summary[-1].data)  # spend in the run's markdown artifact
    leaks = [p for p in data_dir.rglob("*") if p.is_file() and KEY.encode() in p.read_bytes()]
    assert leaks == []  # the state DB, snapshot storage, Prefect results, repositories and sites
    assert (data_dir / "pombolt.db").exists() and any((data_dir / "storage").rglob("*"))


def test_a_twelve_file_plan_runs_as_mapped_tasks_and_a_500_retries_only_that_file(fake: FakeOpenAI) -> None:
    files = {"index.html": "", **{f"part{i:02d}.js": f"export const part{i} = {i};\n" for i in range(1, 12)}}
    scripts = "".join(f'<script type="module" src="part{i:02d}.js"></script>' for i in range(1, 12))
    files["index.html"] = f"<!doctype html><html><body><h1>Big app</h1>{scripts}</body></html>\n"
    fake.responder = app_responder(files)
    fake.fail_file("part05.js", 500, times=3, retry_after=0.01)  # the SDK's 1 + 2 retries all fail
    requirements = "a big dashboard app. " + "It has many panels and widgets. " * 80  # over the size rule

    code, report, out = pombolt("run", requirements, "--name", "big", "--generator", "openai", "--json")
    assert code == 0, out
    asked = [c.asked_file for c in fake.completions if c.asked_file]
    assert len(asked) == 12 + 3 and asked.count("part05.js") == 4
    assert all(asked.count(p) == 1 for p in files if p != "part05.js")
    assert fake.calls() == 1 + 12 + 3  # plan, one call per file, three failed attempts at part05.js
    assert report["spend"] == spent(fake) and report["spend"]["llm_calls"] == 13
    page = httpx.get(report["live_url"], timeout=10)
    assert "Big app" in page.text

    code, again, out = pombolt("run", requirements, "--name", "big", "--json")
    assert code == 0, out
    assert fake.calls() == 16 and again["spend"]["llm_calls"] == 0


def test_a_hostile_path_fails_the_run_naming_it_and_writes_nothing_outside(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.responder = app_responder({"index.html": "<h1>x</h1>\n", "../escape.txt": "owned"})
    code, report, out = pombolt("run", "a page", "--name", "evil", "--generator", "openai", "--json")
    assert code == 1, out
    assert report["status"] == "failed" and report["error"]["phase"] == "generate"
    assert "../escape.txt" in report["error"]["message"] and "no-parent-segments" in report["error"]["message"]
    assert fake.calls() == 1  # not retried: unsafe output is not retryable
    assert not list(tmp_path.rglob("escape.txt")) and not (tmp_path.parent / "escape.txt").exists()


def test_files_that_stay_broken_fail_the_run_with_the_check_output_and_are_charged(fake: FakeOpenAI) -> None:
    require_tool("node", "node --check is what finds the broken app.js")
    fake.responder = app_responder(APP)  # every repair answer is as broken as the first
    code, report, out = pombolt("run", "a stubborn page", "--name", "stubborn", "--generator", "openai", "--json")
    assert code == 1, out
    assert report["status"] == "failed" and report["error"]["phase"] == "check"
    assert report["error"]["code"] == "phase.check" and report["error"]["retryable"] is False
    assert "after 2 repair round(s)" in report["error"]["message"]
    assert "app.js: JavaScript syntax error" in report["error"]["message"]
    assert fake.calls() == 3  # generation + max_repair_rounds (2), never retried blindly
    assert report["spend"] == spent(fake) and report["spend"]["llm_calls"] == 3
