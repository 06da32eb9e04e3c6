# ruff: noqa: F401, F811 - the shared API fixtures are imported by name
"""Hostile tenants and hostile model output against the path rules and the API, attacked as an attacker would.

- Generated files: CI configuration of every Git host and git hooks (refused unless the project allows CI
  configuration), files that steer git (``.gitmodules``, ``.gitattributes``), Windows device names, lone
  surrogates in a path or in text: each refused at validation, naming the file and the rule.
- ``Host`` header injection into ``status_url``; the status page and every answer under a strict
  Content-Security-Policy (checked in a real browser too) with anti-framing, no-sniff and no-referrer headers;
  NUL and other C0 controls in requirements; guessing API keys from one address.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from limits import parse
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.app import API_CSP, PAGE_CSP, create_app
from api.deps import AUTH_FAILURE_LIMIT
from blocks.generators.wire import WireProject, to_generated
from core.errors import PathRuleViolation
from core.files import GeneratedFile, validate_files
from core.models import RunStatus
from core.settings import ApiSettings
from core.store import Store
from tests.conftest import IN_CI
from tests.integration.api.conftest import (
    Tenant,
    acme,
    client,
    live_server,
    make_client,
    make_tenant,
    store,
)
from tests.security.corpus import BY_NAME, INDEX, HostileOutput

REQ = "a pomodoro timer with a task list"

# === generated files ==============================================================================================
#: The corpus entries of this work item: each is an otherwise fine project with one hostile file in it.
ATTACKS = [
    "gitlab-ci",
    "circleci",
    "bitbucket-pipelines",
    "github-action",
    "workflow",
    "workflow-kelvin-sign",
    "husky-hook",
    "gitmodules",
    "gitattributes",
    "device-con",
    "device-nul",
    "device-prn",
    "device-aux-txt",
    "device-com1-js",
    "device-lpt9",
    "device-folder",
    "device-superscript",
    "surrogate-name",
    "surrogate-in-js",
    "surrogate-in-readme",
    "surrogate-in-utf16",
]


@pytest.mark.parametrize("name", ATTACKS)
def test_a_generation_smuggling_a_hostile_file_is_refused_naming_the_file_and_the_rule(name: str) -> None:
    entry: HostileOutput = BY_NAME[name]
    with pytest.raises(PathRuleViolation) as info:
        validate_files(entry.files())
    err = info.value
    assert (err.rule, err.path) == (entry.rule, entry.path), err.message
    assert f"generated file '{entry.path}' breaks rule '{entry.rule}'" in err.message
    # the refusal becomes the run's error, stored and sent as JSON: it must be printable UTF-8 text
    assert err.message.isprintable()
    assert json.loads(json.dumps({"error": err.message}, ensure_ascii=False).encode("utf-8"))


@pytest.mark.parametrize("name", [n for n in ATTACKS if BY_NAME[n].rule == "no-workflows"])
def test_ci_configuration_and_hooks_pass_only_for_a_project_that_allows_ci_configuration(name: str) -> None:
    files = BY_NAME[name].files()
    with pytest.raises(PathRuleViolation, match="unless the project allows them"):
        validate_files(files)
    assert len(validate_files(files, allow_workflows=True)) == len(files)


@pytest.mark.parametrize("name", [n for n in ATTACKS if BY_NAME[n].rule != "no-workflows"])
def test_allowing_ci_configuration_does_not_let_git_metadata_device_names_or_surrogates_through(name: str) -> None:
    entry = BY_NAME[name]
    with pytest.raises(PathRuleViolation) as info:
        validate_files(entry.files(), allow_workflows=True)
    assert info.value.rule == entry.rule


def test_case_and_unicode_disguises_of_ci_files_and_device_names_are_refused() -> None:
    for path, rule in [
        (".GitLab-CI.yml", "no-workflows"),
        (".CircleCI/config.yml", "no-workflows"),
        (".HUSKY/pre-push", "no-workflows"),
        (".github/wor\u212aflows/x.yml", "no-workflows"),  # U+212A KELVIN SIGN is stored as 'K'
        (".GITATTRIBUTES", "no-git-metadata"),
        ("GitMod~1", "no-git-metadata"),
        ("Nul.Txt", "no-reserved-names"),
        ("lPt\u00b9.js", "no-reserved-names"),
        ("con .html", "no-reserved-names"),
    ]:
        with pytest.raises(PathRuleViolation) as info:
            validate_files([GeneratedFile(path=INDEX[0], content=INDEX[1]), GeneratedFile(path=path, content=b"x")])
        assert info.value.rule == rule, path


def test_a_lone_surrogate_in_a_models_text_file_is_refused_not_turned_into_a_question_mark() -> None:
    answer = json.loads('{"files": [{"path": "app.js", "content": "const s = \\"\\ud800\\";", '
                        '"encoding": "utf-8", "action": "add"}], "notes": ""}')  # fmt: skip
    files, _ = to_generated(WireProject.model_validate(answer))
    try:
        validate_files(files)
    except PathRuleViolation as err:
        assert (err.rule, err.path) == ("no-surrogates", "app.js")
    else:
        raise AssertionError(f"accepted as {files[0].content!r}")


# === the API =====================================================================================================
@pytest.fixture
def submitted(client: TestClient, acme: Tenant) -> dict[str, Any]:
    r = client.post("/api/requirements", json={"requirements": REQ}, headers=acme.headers)
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    return body


# --- Host header injection ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "evil.example"},
        {"Host": "evil.example:443", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"},
        {"Host": "127.0.0.1@evil.example"},
        {"Forwarded": "host=evil.example;proto=https", "X-Forwarded-Prefix": "//evil.example"},
    ],
)
def test_a_forged_host_header_never_reaches_the_status_url(
    live_server: str, acme: Tenant, headers: dict[str, str]
) -> None:
    with httpx.Client(base_url=live_server, timeout=10) as http:
        r = http.post("/api/requirements", json={"requirements": REQ}, headers={**acme.headers, **headers})
        assert r.status_code == 202, r.text
        url = r.json()["status_url"]
        assert "evil" not in r.text
        assert url == f"/api/projects/{r.json()['project_id']}"
        assert http.get(url, headers=acme.headers).json()["id"] == r.json()["project_id"]  # the client resolves it


def test_a_retry_links_to_the_project_without_the_host_header_too(
    client: TestClient, store: Store, acme: Tenant, submitted: dict[str, Any]
) -> None:
    run = store.get_run(submitted["run_id"], "acme")
    store.transition(run, RunStatus.failed, error_phase="deploy", error_code="phase.deploy", error_message="x")
    r = client.post(f"/api/projects/{submitted['project_id']}/retry", headers={**acme.headers, "Host": "evil.example"})
    assert r.status_code == 202, r.text
    assert r.json()["status_url"] == f"/api/projects/{submitted['project_id']}"


def test_with_a_public_url_configured_links_are_absolute_on_it_whatever_the_host(
    make_client: Callable[..., TestClient], acme: Tenant
) -> None:
    client = make_client(public_url="https://pombolt.example.com/")
    r = client.post("/api/requirements", json={"requirements": REQ}, headers={**acme.headers, "Host": "evil.example"})
    assert r.json()["status_url"] == f"https://pombolt.example.com/api/projects/{r.json()['project_id']}"


@pytest.mark.parametrize("bad", ["javascript:alert(1)", "//evil.example", "https://x.example/?a=1", "ftp://x.example"])
def test_a_public_url_that_is_not_a_plain_http_url_is_refused_at_start(bad: str) -> None:
    with pytest.raises(ValueError, match="public_url"):
        ApiSettings(public_url=bad)


# --- security headers on every answer ----------------------------------------------------------------------------
FIXED = {"x-frame-options": "DENY", "x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}


def assert_locked(r: httpx.Response, csp: str) -> None:
    for name, value in FIXED.items():
        assert r.headers.get(name) == value, (r.request.url, name, r.headers.get(name))
    assert r.headers.get_list("content-security-policy") == [csp], r.request.url


def test_the_status_page_policy_allows_only_its_own_script_styles_and_api_calls() -> None:
    directives = dict(d.strip().split(" ", 1) for d in PAGE_CSP.split(";"))
    assert directives == {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": "'self'",
        "connect-src": "'self'",
        "base-uri": "'none'",
        "form-action": "'none'",
        "frame-ancestors": "'none'",
    }
    assert "unsafe" not in PAGE_CSP and "unsafe" not in API_CSP and "frame-ancestors 'none'" in API_CSP


def test_the_status_page_and_its_files_carry_the_headers(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert_locked(page, PAGE_CSP)
    # nothing inline that the policy would block: one external script, one stylesheet, no style attributes
    assert re.findall(r"<script[^>]*>", page.text) == ['<script src="app.js">']
    assert re.findall(r"\sstyle=|<style|\son[a-z]+=|javascript:", page.text) == []
    for path in ("/app.js", "/style.css", "/index.html"):
        r = client.get(path)
        assert r.status_code == 200
        assert_locked(r, PAGE_CSP if path.endswith(".html") else API_CSP)


def test_every_kind_of_api_answer_carries_the_headers(
    make_client: Callable[..., TestClient], acme: Tenant, store: Store
) -> None:
    client = make_client(rate_limit="1/minute")
    answers = {
        "202": client.post("/api/requirements", json={"requirements": REQ}, headers=acme.headers),
        "429 rate": client.post("/api/requirements", json={"requirements": REQ}, headers=acme.headers),
        "200": client.get("/api/projects", headers=acme.headers),
        "401": client.get("/api/projects"),
        "401 wrong key": client.get("/api/projects", headers={"Authorization": "Bearer pb_nope"}),
        "404": client.get("/api/projects/nope", headers=acme.headers),
        "404 static": client.get("/nope.html"),
        "405": client.delete("/api/requirements", headers=acme.headers),
        "413": client.post("/api/requirements", content=b"x" * (300 * 1024), headers=acme.headers),
        "422": client.post("/api/requirements", json={"requirements": 5}, headers=acme.headers),
        "400": client.post(
            "/api/requirements",
            content=b'{"requirements": "\xff"}',
            headers={**acme.headers, "Content-Type": "application/json"},
        ),
        "openapi": client.get("/openapi.json"),
        "health": client.get("/healthz"),
        "metrics": client.get("/metrics"),
    }
    assert {k: r.status_code for k, r in answers.items() if not k[0].isalpha()} == {
        k: int(k[:3]) for k in answers if not k[0].isalpha()
    }
    for r in answers.values():
        assert_locked(r, API_CSP)


def test_even_an_unhandled_500_carries_the_headers(store: Store) -> None:
    app = create_app()

    async def boom(_request: Request) -> Response:
        raise RuntimeError("boom")

    app.router.routes.insert(0, Route("/api/boom", boom))  # ahead of the status page's catch-all mount
    with TestClient(app, raise_server_exceptions=False) as raw:
        r = raw.get("/api/boom")
    assert r.status_code == 500
    assert_locked(r, API_CSP)


def test_the_api_docs_run_their_one_inline_script_by_hash_only(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    for name, value in FIXED.items():
        assert r.headers[name] == value
    (csp,) = r.headers.get_list("content-security-policy")
    inline = re.findall(r"<script>(.*?)</script>", r.text, re.S)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src")).split()
    assert script_src == ["script-src", "https://cdn.jsdelivr.net", f"'sha256-{digest}'"]
    assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in " ".join(script_src)
    assert client.get("/redoc").status_code == 404  # one docs page, under its own policy


def _chromium() -> str:
    path = os.environ.get("POMBOLT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    message = "TOOL NOT AVAILABLE: chromium (status page browser test); scripts/test installs it with apt as root"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective));
"""
INJECT = """() => {
  const s = document.createElement('script'); s.textContent = 'window.__pwned = 1'; document.body.appendChild(s);
  const img = document.createElement('img'); img.src = 'https://evil.example/steal'; document.body.appendChild(img);
  const a = document.createElement('div'); a.setAttribute('onclick', 'window.__pwned = 2'); a.click();
}"""


def test_the_status_page_works_under_its_policy_and_an_injected_script_does_not_run(
    live_server: str, acme: Tenant
) -> None:
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    executable = _chromium()
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"]  # fmt: skip
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=args)
        try:
            context = browser.new_context()
            context.add_init_script(WATCH_VIOLATIONS)
            page = context.new_page()
            page.goto(live_server + "/")
            page.fill("#api-key", acme.key)
            page.click("#key-form button[type=submit]")
            page.fill("#requirements", REQ)
            page.click("#submit-button")
            page.wait_for_selector(".project .phase", timeout=10_000)
            assert page.locator("#message").inner_text().startswith("Queued run ")
            assert page.evaluate("getComputedStyle(document.body).maxWidth") != "none", "the stylesheet applies"
            assert page.evaluate("window.__violations") == [], "the page itself needs nothing the policy blocks"

            page.evaluate(INJECT)
            page.wait_for_function("window.__violations.length >= 3", timeout=5_000)
            assert page.evaluate("window.__pwned") is None
            assert set(page.evaluate("window.__violations")) >= {"script-src-elem", "img-src", "script-src-attr"}

            framer = context.new_page()  # another origin framing the page (clickjacking)
            framer.set_content(f'<iframe id="f" src="{live_server}/"></iframe>')
            framer.wait_for_timeout(1000)
            assert len(framer.frames) == 2, "the frame exists..."
            assert framer.frames[1].query_selector("#api-key") is None, "...but the page refused to load in it"
        finally:
            browser.close()


# --- control characters in requirements ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        b'{"requirements": "a timer\\u0000; rm -rf /"}',
        b'{"requirements": "\\u0000"}',
        b'{"requirements": "red \\u001b[31mALERT\\u001b[0m"}',
        b'{"requirements": "erase\\u0008\\u0008\\u0008 it"}',
        b'{"requirements": "page\\u000cbreak"}',
    ],
)
def test_nul_and_terminal_controls_in_requirements_are_a_422_naming_the_field_and_store_nothing(
    client: TestClient, store: Store, acme: Tenant, raw: bytes
) -> None:
    r = client.post("/api/requirements", content=raw, headers={**acme.headers, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body", "requirements"] and "control character" in error["msg"]
    assert "\x00" not in r.text and "rm -rf" not in r.text, "the refusal does not echo the text"
    assert store.count_runs_by_status() == {}


def test_tabs_and_line_breaks_are_still_requirements_text(client: TestClient, store: Store, acme: Tenant) -> None:
    r = client.post(
        "/api/requirements", json={"requirements": "a timer\r\n\twith tabs\nand lines"}, headers=acme.headers
    )
    assert r.status_code == 202, r.text
    assert store.get_run(r.json()["run_id"], "acme").requirements == "a timer\n\twith tabs\nand lines"


# --- guessing keys -----------------------------------------------------------------------------------------------
LIMIT = parse(AUTH_FAILURE_LIMIT).amount


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> Callable[[TestClient], list[str]]:
    """Record the keys an app looks up in its database (the list it returns grows with each lookup)."""

    def spy(client: TestClient) -> list[str]:
        app_store = client.app.state.pombolt.store  # type: ignore[attr-defined]
        calls: list[str] = []
        real = app_store.tenant_for_key

        def counted(key: str) -> Any:
            calls.append(key)
            return real(key)

        monkeypatch.setattr(app_store, "tenant_for_key", counted)
        return calls

    return spy


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/projects"), ("POST", "/api/requirements")])
def test_guessing_keys_from_one_address_gets_429_before_any_lookup(
    make_client: Callable[..., TestClient],
    acme: Tenant,
    lookups: Callable[[TestClient], list[str]],
    method: str,
    path: str,
) -> None:
    client = make_client()
    calls = lookups(client)
    guesses = [f"pb_guess{i:04d}" for i in range(LIMIT + 5)]
    answers = [
        client.request(method, path, json={"requirements": REQ}, headers={"Authorization": f"Bearer {g}"})
        for g in guesses
    ]
    assert [r.status_code for r in answers] == [401] * LIMIT + [429] * 5
    assert calls == guesses[:LIMIT], "past the limit no key is looked up"
    blocked = answers[-1]
    assert 1 <= int(blocked.headers["retry-after"]) <= 61
    assert "too many failed authentications" in blocked.json()["detail"]
    assert "pb_guess" not in blocked.text
    # the right key, never used from here before, is indistinguishable from a guess until the window passes
    r = client.request(method, path, json={"requirements": REQ}, headers=acme.headers)
    assert r.status_code == 429 and len(calls) == LIMIT


def test_a_key_that_authenticated_before_keeps_working_while_its_address_is_blocked(
    make_client: Callable[..., TestClient], acme: Tenant
) -> None:
    client = make_client()
    assert client.get("/api/projects", headers=acme.headers).status_code == 200
    for i in range(LIMIT + 1):
        client.get("/api/projects", headers={"Authorization": f"Bearer pb_guess{i}"})
    assert client.get("/api/projects", headers={"Authorization": "Bearer pb_guess"}).status_code == 429
    assert client.get("/api/projects", headers=acme.headers).status_code == 200
    assert client.post("/api/requirements", json={"requirements": REQ}, headers=acme.headers).status_code == 202


def test_a_forged_x_forwarded_for_buys_no_extra_guesses(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    codes = [
        client.get(
            "/api/projects",
            headers={"Authorization": f"Bearer pb_guess{i}", "X-Forwarded-For": f"203.0.113.{i}", "X-Real-IP": str(i)},
        ).status_code
        for i in range(LIMIT + 3)
    ]
    assert codes == [401] * LIMIT + [429] * 3


@pytest.mark.parametrize(
    ("first", "second", "shared"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", True),  # one /64: one host's usual block
        ("2001:db8:1:2::1", "2001:db8:1:3::1", False),
        ("198.51.100.7", "::ffff:198.51.100.7", True),  # the same IPv4 client, mapped
        ("198.51.100.7", "198.51.100.8", False),
    ],
)
def test_failures_count_per_client_address(store: Store, acme: Tenant, first: str, second: str, shared: bool) -> None:
    app = create_app()
    with TestClient(app, client=(first, 1000)) as one:
        for i in range(LIMIT):
            assert one.get("/api/projects", headers={"Authorization": f"Bearer pb_g{i}"}).status_code == 401
        assert one.get("/api/projects", headers={"Authorization": "Bearer pb_g"}).status_code == 429
    with TestClient(app, client=(second, 2000)) as two:
        r = two.get("/api/projects", headers={"Authorization": "Bearer pb_other"})
    assert r.status_code == (429 if shared else 401)


def test_the_retry_after_is_honest(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    client.app.state.pombolt.auth_failures = parse("3/2 seconds")  # type: ignore[attr-defined]
    bad = {"Authorization": "Bearer pb_guess"}
    while time.time() % 2 > 0.5:  # the limiter's windows start at multiples of 2 s: use one from its start
        time.sleep(0.05)
    assert [client.get("/api/projects", headers=bad).status_code for _ in range(4)] == [401, 401, 401, 429]
    wait = int(client.get("/api/projects", headers=bad).headers["retry-after"])
    assert 1 <= wait <= 3
    time.sleep(wait)
    assert client.get("/api/projects", headers=bad).status_code == 401, "after Retry-After the address may try again"


def test_revoked_keys_count_as_failed_authentications(
    make_client: Callable[..., TestClient], store: Store, make_tenant: Callable[[str], Tenant]
) -> None:
    client = make_client()
    keys = [make_tenant("acme") for _ in range(LIMIT + 1)]
    for key in keys:
        store.revoke_api_key(key.key[:10])
    codes = [client.get("/api/projects", headers=key.headers).status_code for key in keys]
    assert codes == [401] * LIMIT + [429]
