"""Secrets audit: the whole pipeline with distinctive credentials everywhere, then a search for every one of them.

Four runs through the real CLI under the session's Prefect harness, against the stateful fakes on 127.0.0.1:

1. a saved ``OpenAICompatibleGenerator`` (fake LLM) → ``GitHubRepositoryTarget`` (fake GitHub) → ``NetlifySite``
   (fake Netlify);
2. a test-only generator whose ``package.json`` build script prints its whole environment (to the build log
   and into the site) → the same GitHub Block → ``CloudflarePagesSite`` (fake Cloudflare);
3. the offline generator → no repository → ``VercelProject`` (fake Vercel);
4. a ``NetlifySite`` with a bad (also distinctive) token: a deliberate failure.

The worker's own environment holds more distinctive tokens (``OPENAI_API_KEY``, ``GITHUB_TOKEN``, …). Then every
secret, its URL-encoded form and its base64 form (all three byte alignments, standard and URL-safe alphabets)
is searched for in the state store (SQLite file bytes with ``-wal``/``-shm``), snapshot storage and Prefect
results, our log records and captured output, Prefect's logs, flow runs and task runs (parameters, state
messages), artifacts, the Git history and every object of the fake's bare repositories, the built site, every
error message, the Prefect harness database file and the fakes' request logs — where a token may appear only in
the ``Authorization`` header of the service it belongs to. Zero hits.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from prefect.blocks.core import Block
from prefect_github import GitHubCredentials
from pydantic import SecretStr
from typer.testing import CliRunner

from blocks.catalog import save_block
from blocks.generators.base import GenerationRequest, GenerationResult, Generator
from blocks.generators.openai_compat import OpenAICompatibleGenerator
from blocks.repositories.github import GitHubRepositoryTarget
from blocks.targets.cloudflare_pages import CloudflarePagesSite
from blocks.targets.netlify import NetlifySite
from blocks.targets.vercel import VercelProject
from core.files import GeneratedFile
from core.runtime import get_snapshots, get_store
from core.settings import get_settings
from ops.cli import app
from tests.conftest import require_tool
from tests.fakes.base import FakeService
from tests.fakes.cloudflare import FakeCloudflare
from tests.fakes.github import FakeGitHub, name_of
from tests.fakes.netlify import FakeNetlify
from tests.fakes.openai import FakeOpenAI, app_responder
from tests.fakes.vercel import FakeVercel
from usecases.setup import ensure_limits

pytestmark = pytest.mark.e2e

# Distinctive, and with characters that URL-encoding changes ('+', '/', '='), so every form is a real search.
LLM_KEY = "sk-AUDIT+llm/Q7z9K2m4N6p8R0t1V3x5"
GH_TOKEN = "ghp_AUDIT+gh/W8e6R4t2Y0u9I7o5P3a1"
NETLIFY_TOKEN = "nfp_AUDIT+nf/S2d4F6g8H0j1K3l5Z7x9="
NETLIFY_BAD = "nfp_AUDIT+bad/C1v3B5n7M9q2W4e6R8t0"
CF_TOKEN = "cf_AUDIT+cf/Y1u3I5o7P9a2S4d6F8g0h"
VERCEL_TOKEN = "vc_AUDIT+vc/J2k4L6z8X0c1V3b5N7m9q"
ENV_SECRETS = {
    "OPENAI_API_KEY": "sk-ENVAUDIT+openai/A9s8D7f6G5h4J3k2L1",
    "GITHUB_TOKEN": "ghp_ENVAUDIT+github/Q1w2E3r4T5y6U7i8O9",
    "NETLIFY_AUTH_TOKEN": "nfp_ENVAUDIT+netlify/Z9x8C7v6B5n4M3q2",
    "CLOUDFLARE_API_TOKEN": "cf_ENVAUDIT+cloudflare/P0o9I8u7Y6t5R4e3",
    "VERCEL_TOKEN": "vc_ENVAUDIT+vercel/L0k9J8h7G6f5D4s3A2",
    "AWS_SECRET_ACCESS_KEY": "aws_ENVAUDIT+aws/M1n2B3v4C5x6Z7l8K9",
    "NPM_TOKEN": "npm_ENVAUDIT+npm/T5r4E3w2Q1y6U7i8O9",
}
BLOCK_SECRETS = {
    "llm api_key": LLM_KEY,
    "github token": GH_TOKEN,
    "netlify token": NETLIFY_TOKEN,
    "netlify bad token": NETLIFY_BAD,
    "cloudflare token": CF_TOKEN,
    "vercel token": VERCEL_TOKEN,
}
SECRETS = {**BLOCK_SECRETS, **{f"env {k}": v for k, v in ENV_SECRETS.items()}}
ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"
API_PATHS = {
    "llm": r"/v1/.*",
    "github": r"/(user|repos/.*)",
    "netlify": r"/api/v1/.*",
    "cloudflare": r"/client/v4/.*",
    "vercel": r"/v\d+/.*",
}

APP = {
    "index.html": '<!doctype html>\n<html><head><title>Audit</title><link rel="stylesheet" href="styles.css">'
    "</head>\n<body><h1>Audit app</h1></body></html>\n",
    "styles.css": "body { font-family: sans-serif; }\n",
}
BUILD_JS = """const fs = require('fs');
console.log(JSON.stringify(process.env));
fs.mkdirSync('dist', {recursive: true});
fs.writeFileSync('dist/index.html', '<!doctype html><title>env</title><h1>built</h1>\\n');
fs.writeFileSync('dist/env.json', JSON.stringify(process.env));
"""


class EnvPrintingGenerator(Generator):
    """Test-only generator: an npm project whose build prints its environment and writes it into the site."""

    _block_type_name = "Pom-Bolt Test Env Printing Generator"
    _block_type_slug = "pombolt-test-env-printing-generator"

    def generate(self, request: GenerationRequest) -> GenerationResult:
        package = {"name": "env-audit", "version": "1.0.0", "private": True, "scripts": {"build": "node build.js"}}
        return GenerationResult(
            files=[
                GeneratedFile.text("package.json", json.dumps(package, indent=2) + "\n"),
                GeneratedFile.text("build.js", BUILD_JS),
            ],
            label="test env-printing npm project",
        )


def needles(secret: str) -> dict[str, bytes]:
    """Every form of ``secret`` to search for: raw, URL-encoded, and base64 at each byte alignment."""
    raw = secret.encode()
    forms = {"raw": raw, "url": quote(secret, safe="").encode(), "url+": quote_plus(secret).encode()}
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        core = encoded[(4 * shift + 2) // 3 : len(encoded) - 4]  # only characters made of the secret's bits
        forms[f"b64/{shift}"] = core
        forms[f"b64url/{shift}"] = core.translate(bytes.maketrans(b"+/", b"-_"))
    return forms


def hits(where: str, data: bytes | str) -> list[str]:
    """Which secrets (and in which form) ``data`` holds, labelled with ``where``."""
    blob = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    return [
        f"{where}: {name} ({form})"
        for name, secret in SECRETS.items()
        for form, needle in needles(secret).items()
        if needle in blob
    ]


def file_hits(root: Path) -> list[str]:
    """Hits in the bytes of every file under ``root``."""
    found: list[str] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        found += hits(str(path), path.read_bytes())
    return found


def _dump(models: Iterable[Any]) -> str:
    return "\n".join(m.model_dump_json() for m in models)


def _paged(read: Any, **kwargs: Any) -> list[Any]:
    out: list[Any] = []
    while True:
        page = read(limit=200, offset=len(out), **kwargs)
        out += page
        if len(page) < 200:
            return out


def test_the_search_finds_every_form_of_a_secret() -> None:
    secret = SECRETS["github token"]
    for prefix in ("", "a", "ab", "x-access-token:"):
        basic = (prefix + secret + ":tail").encode()
        assert hits("b64", base64.b64encode(basic)) and hits("b64url", base64.urlsafe_b64encode(basic))
    assert hits("url", "https://x/?t=" + quote(secret, safe="")) == [
        "url: github token (url)",
        "url: github token (url+)",
    ]
    assert hits("raw", f"token {secret}!") and not hits("none", secret[:-1])


@pytest.fixture
def fakes(tmp_path: Path) -> Iterator[dict[str, FakeService]]:
    with (
        FakeOpenAI(tokens={LLM_KEY}, responder=app_responder(APP)) as llm,
        FakeGitHub(users={GH_TOKEN: "audit"}, root=tmp_path / "github") as github,
        FakeNetlify(tokens={NETLIFY_TOKEN}) as netlify,
        FakeCloudflare(tokens={CF_TOKEN}) as cloudflare,
        FakeVercel(tokens={VERCEL_TOKEN}) as vercel,
    ):
        yield {"llm": llm, "github": github, "netlify": netlify, "cloudflare": cloudflare, "vercel": vercel}


@pytest.fixture(autouse=True)
def isolated(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name, value in ENV_SECRETS.items():
        monkeypatch.setenv(name, value)
    ensure_limits()  # what `pombolt init` does: every provider's rate limit exists (strict=True)
    yield data_dir
    from blocks.targets.static_host import stop

    stop(get_settings())


def _save_blocks(fakes: dict[str, FakeService]) -> None:
    llm, github, netlify = fakes["llm"], fakes["github"], fakes["netlify"]
    cloudflare, vercel = fakes["cloudflare"], fakes["vercel"]
    assert isinstance(llm, FakeOpenAI) and isinstance(netlify, FakeNetlify)
    assert isinstance(cloudflare, FakeCloudflare) and isinstance(vercel, FakeVercel)
    blocks: dict[str, Block] = {
        "audit-llm": OpenAICompatibleGenerator(api_key=SecretStr(LLM_KEY), base_url=llm.api_url, model="gpt-test"),
        "audit-env-gen": EnvPrintingGenerator(),
        "audit-gh": GitHubRepositoryTarget(
            credentials=GitHubCredentials(token=SecretStr(GH_TOKEN)), api_url=github.url
        ),
        "audit-netlify": NetlifySite(
            token=SecretStr(NETLIFY_TOKEN), api_url=netlify.api_url, poll_interval=0.05, poll_max_interval=0.2
        ),
        "audit-netlify-bad": NetlifySite(token=SecretStr(NETLIFY_BAD), api_url=netlify.api_url),
        "audit-cf": CloudflarePagesSite(
            api_token=SecretStr(CF_TOKEN),
            account_id=ACCOUNT,
            project_name="audit-cf",
            api_url=cloudflare.api_url,
            site_url=cloudflare.site_url("audit-cf"),
        ),
        "audit-vercel": VercelProject(
            token=SecretStr(VERCEL_TOKEN),
            project_name="audit-vercel",
            api_url=vercel.url,
            site_url=vercel.site_url("audit-vercel"),
        ),
    }
    store, tenant = get_store(), get_settings().default_tenant
    store.ensure_tenant(tenant)
    for name, block in blocks.items():
        save_block(store, tenant, name, block)


def pombolt(*args: str) -> tuple[int, dict[str, Any], str]:
    result = CliRunner().invoke(app, list(args))
    lines = result.stdout.strip().splitlines()
    report = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    return result.exit_code, report, result.stdout + result.stderr


def _request_log_hits(fakes: dict[str, FakeService]) -> list[str]:
    """Secrets anywhere in a fake's request log except its own token in the Authorization header."""
    own = {
        "llm": {LLM_KEY},
        "github": {GH_TOKEN},
        "netlify": {NETLIFY_TOKEN, NETLIFY_BAD},
        "cloudflare": {CF_TOKEN},
        "vercel": {VERCEL_TOKEN},
    }
    found: list[str] = []
    for name, fake in fakes.items():
        issued = set(fake.jwts) if isinstance(fake, FakeCloudflare) else set()  # Cloudflare's upload JWTs
        for entry in fake.requests():
            where = f"{name} {entry.method} {entry.path}"
            found += hits(f"{where} path+query", entry.path + json.dumps(entry.query))
            found += hits(f"{where} body", entry.body)
            for header, value in entry.headers.items():
                if header.lower() == "authorization":
                    token = value.partition(" ")[2].strip()
                    if token and token not in own[name] | issued:
                        found.append(f"{where}: Authorization carries a token that is not {name}'s")
                    continue
                found += hits(f"{where} header {header}", value)
    return found


def test_no_credential_is_kept_or_sent_anywhere_but_its_own_authorization_header(
    fakes: dict[str, FakeService],
    data_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    require_tool("node", "the env-printing build script runs with node")
    require_tool("npm", "the build runs 'npm run build'")
    caplog.set_level(logging.DEBUG)
    _save_blocks(fakes)
    outputs: list[str] = []

    code, llm_run, out = pombolt(
        "run", "an audit app", "--name", "audit-llm", "--generator", "audit-llm", "--repository", "audit-gh",
        "--target", "audit-netlify", "--json",
    )  # fmt: skip
    outputs.append(out)
    assert code == 0 and llm_run["status"] == "verified", out
    code, build_run, out = pombolt(
        "run", "an env app", "--name", "audit-env", "--generator", "audit-env-gen", "--repository", "audit-gh",
        "--target", "audit-cf", "--json",
    )  # fmt: skip
    outputs.append(out)
    assert code == 0 and build_run["status"] == "verified", out
    code, vercel_run, out = pombolt(
        "run", "a vercel app", "--name", "audit-vc", "--repository", "none", "--target", "audit-vercel", "--json"
    )
    outputs.append(out)
    assert code == 0 and vercel_run["status"] == "verified", out
    code, failed_run, out = pombolt(
        "run", "a doomed app", "--name", "audit-bad", "--repository", "none", "--target", "audit-netlify-bad", "--json"
    )
    outputs.append(out)
    assert code == 1 and failed_run["status"] == "failed", out
    assert failed_run["error"]["phase"] == "preflight" and "401" in failed_run["error"]["message"]

    # every Block really used its credential, in the right header of the right service
    fake_llm, fake_gh = fakes["llm"], fakes["github"]
    assert isinstance(fake_llm, FakeOpenAI) and isinstance(fake_gh, FakeGitHub)
    assert fake_llm.calls() >= 1
    assert fakes["netlify"].requests(path_re=r".*/deploys.*"), "Netlify deployed"
    assert any(e.headers.get("Authorization", "").endswith(NETLIFY_BAD) for e in fakes["netlify"].requests())
    for name, fake in fakes.items():  # every API call (not the public live-site pages) carried a credential
        api_calls = fake.requests(path_re=API_PATHS[name])
        assert api_calls, f"{name} was called"
        assert all(e.headers.get("Authorization") for e in api_calls), name
    assert _request_log_hits(fakes) == []

    found: list[str] = []
    # the CLI's output (reports, error lines) and every error stored on a run
    for i, out in enumerate(outputs):
        found += hits(f"cli output of run {i + 1}", out)
    store = get_store()
    runs = [store.get_run(r["run_id"]) for r in (llm_run, build_run, vercel_run, failed_run)]
    assert runs[3].error_message and "token" in runs[3].error_message.lower()
    for run in runs:
        found += hits(f"state store row of run {run.id}", run.model_dump_json())

    # the state store, snapshots, local repositories and sites: every file of the data dir (DB with -wal/-shm)
    assert (data_dir / "pombolt.db").exists() and any((data_dir / "storage").rglob("*"))
    found += file_hits(data_dir)
    found += file_hits(Path(os.environ["PREFECT_LOCAL_STORAGE_PATH"]))  # Prefect results
    found += file_hits(Path(os.environ["PREFECT_HOME"]))

    # the built site: the build printed its environment, and none of the tokens was in it
    tenant = runs[1].tenant_id
    assert runs[1].site_snapshot_id and runs[1].site_snapshot_id != runs[1].snapshot_id
    site = {f.path: f.content for f in get_snapshots(tenant).files(runs[1].site_snapshot_id)}
    build_env = json.loads(site["env.json"])
    assert "PATH" in build_env, "the build script really printed its environment"
    for run in runs[:3]:
        snapshots = get_snapshots(run.tenant_id)
        for snapshot_id in {run.snapshot_id, run.site_snapshot_id} - {None}:
            for f in snapshots.files(str(snapshot_id)):
                found += hits(f"snapshot {snapshot_id} {f.path}", f.content)

    # the Git history: a clone of every repository on the fake GitHub, and every object of its bare repositories
    repo_urls = {llm_run["repository_url"], build_run["repository_url"]}
    for i, url in enumerate(sorted(repo_urls)):
        full = name_of(url)
        clone = tmp_path / f"clone-{i}"
        subprocess.run(["git", "clone", "--quiet", fake_gh.clone_url(full), str(clone)], check=True)
        history = subprocess.run(
            ["git", "-C", str(clone), "log", "-p", "--all", "--format=fuller"], check=True, capture_output=True
        ).stdout
        assert len(fake_gh.history(full)) >= 1 and history
        found += hits(f"git log -p of {full}", history)
    for git_dir in sorted(p.parent for p in (tmp_path / "github").rglob("HEAD") if (p.parent / "objects").is_dir()):
        objects = subprocess.run(
            ["git", "-C", str(git_dir), "cat-file", "--batch-all-objects", "--batch"], check=True, capture_output=True
        ).stdout
        found += hits(f"objects of {git_dir}", objects)
        found += file_hits(git_dir)

    # Prefect: logs, flow runs (parameters, state messages), task runs, artifacts — through its API
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        logs = _paged(client.read_logs)
        flow_runs = _paged(client.read_flow_runs)
        task_runs = _paged(client.read_task_runs)
        artifacts = _paged(client.read_artifacts)
    ours = {r.flow_run_id for r in runs}
    assert ours <= {str(fr.id) for fr in flow_runs}
    assert any(str(log.flow_run_id) in ours for log in logs)
    assert any(
        "401" in str(fr.state.message if fr.state else "") for fr in flow_runs if str(fr.id) == runs[3].flow_run_id
    )
    found += hits("prefect logs", _dump(logs))
    found += hits("prefect flow runs", _dump(flow_runs))
    found += hits("prefect task runs", _dump(task_runs))
    found += hits("prefect artifacts", _dump(artifacts))

    # Prefect's own database file: Block documents hold SecretStr fields encrypted, so no plain text at all
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    db_url = PREFECT_SERVER_DATABASE_CONNECTION_URL.value() or ""
    assert db_url.startswith("sqlite"), db_url  # the harness's own SQLite file
    db_path = Path(db_url.split("///", 1)[-1])
    assert db_path.exists(), db_path
    for path in sorted(db_path.parent.glob(db_path.name + "*")):
        found += hits(str(path), path.read_bytes())

    # our log records and everything written to the process's stdout/stderr
    assert caplog.records
    found += hits("log records", "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records))
    captured = capfd.readouterr()
    found += hits("captured stdout/stderr", captured.out + captured.err)

    assert found == []
