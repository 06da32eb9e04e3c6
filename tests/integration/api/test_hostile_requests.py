# ruff: noqa: F811 - the shared API fixtures are imported by name
"""Hostile API requests against the real app on a real SQLite state store.

Oversized bodies, wrong types, unicode edge cases, SQL and HTML in fields, path tricks in ids, another
tenant's ids, huge idempotency keys and malformed Authorization headers: each gets a clear 4xx (never a 5xx),
text is stored literally and shown as text on the status page, and no other tenant's rows change.
"""

from __future__ import annotations

import os
import re
import shutil
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from api.app import PAGE_DIR
from core.models import RunStatus
from core.store import Store
from tests.conftest import IN_CI
from tests.integration.api.conftest import Tenant, live_server  # noqa: F401

REQ = "a pomodoro timer with a task list"
Footprint = dict[str, dict[str | None, int]]


def footprint(store: Store) -> Footprint:
    """Row counts of every state-store table, by tenant where the table has a ``tenant_id`` column."""
    counts: Footprint = {}
    inspector = inspect(store.engine)
    with store.engine.connect() as conn:
        for table in inspector.get_table_names():
            columns = {c["name"] for c in inspector.get_columns(table)}
            if "tenant_id" in columns:
                rows = conn.execute(text(f'SELECT tenant_id, COUNT(*) FROM "{table}" GROUP BY tenant_id'))
                counts[table] = {tenant: n for tenant, n in rows}
            else:
                counts[table] = {None: conn.execute(text(f'SELECT COUNT(*) FROM "{table}"')).scalar_one()}
    return counts


def of(counts: Footprint, tenant: str) -> dict[str, int]:
    """One tenant's row counts per table."""
    return {table: by.get(tenant, 0) for table, by in counts.items()}


@pytest.fixture
def other(client: TestClient, globex: Tenant) -> dict[str, str]:
    """Another tenant with a project and a queued run: what no hostile request of acme's may touch."""
    r = client.post("/api/requirements", json={"requirements": REQ, "name": "theirs"}, headers=globex.headers)
    assert r.status_code == 202, r.text
    body: dict[str, str] = r.json()
    return body


@pytest.fixture
def guard(store: Store, acme: Tenant, other: dict[str, str]) -> Iterator[Callable[[], None]]:
    """Fail unless the other tenant's rows are unchanged after the test; call it to check acme's too."""
    before = footprint(store)

    def acme_unchanged() -> None:
        assert of(footprint(store), "acme") == of(before, "acme"), "a refused request wrote rows"

    yield acme_unchanged
    after = footprint(store)
    assert of(after, "globex") == of(before, "globex")
    assert {t: by for t, by in after.items() if None in by} == {t: by for t, by in before.items() if None in by}


def post_raw(client: TestClient, tenant: Tenant, path: str, body: bytes, **headers: str) -> Any:
    return client.post(path, content=body, headers={**tenant.headers, "Content-Type": "application/json", **headers})


def assert_4xx(r: Any, *codes: int) -> None:
    assert r.status_code in codes, f"{r.status_code}: {r.text[:300]}"
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["detail"], "a refusal says what was wrong"


# --- oversized bodies ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/requirements"), ("POST", "/api/projects/x/changes"), ("PUT", "/api/blocks/pombolt-netlify/nf")],
)
def test_an_oversized_body_is_413_whether_announced_or_streamed(
    client: TestClient, acme: Tenant, guard: Callable[[], None], method: str, path: str
) -> None:
    big = b'{"requirements": "' + b"x" * (300 * 1024) + b'"}'
    announced = client.request(method, path, content=big, headers={**acme.headers, "Content-Type": "application/json"})
    assert_4xx(announced, 413)
    assert "POMBOLT_API_MAX_BODY_BYTES" in announced.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(40):
            yield b"x" * 8192

    streamed = client.request(
        method, path, content=chunks(), headers={**acme.headers, "Content-Type": "application/json"}
    )
    assert_4xx(streamed, 413)
    guard()


def test_a_body_under_the_cap_but_over_the_text_limit_is_a_field_422(
    client: TestClient, acme: Tenant, guard: Callable[[], None]
) -> None:
    r = client.post("/api/requirements", json={"requirements": "y" * 200_000}, headers=acme.headers)
    assert_4xx(r, 422)
    assert any(e["loc"][-1] == "requirements" and "limit" in e["msg"] for e in r.json()["detail"])
    guard()


# --- wrong types ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field", "words"),
    [
        ("/api/requirements", b'{"requirements": 5}', "requirements", "valid string"),
        ("/api/requirements", b'{"requirements": null}', "requirements", "valid string"),
        ("/api/requirements", b'{"requirements": ["a"]}', "requirements", "valid string"),
        ("/api/requirements", b'{"requirements": {"$gt": ""}}', "requirements", "valid string"),
        ("/api/requirements", b'{"requirements": "x", "name": 7}', "name", "valid string"),
        ("/api/requirements", b'{"requirements": "x", "cleanup_on_failure": "maybe"}', "cleanup_on_failure", "boolean"),
        ("/api/requirements", b'{"requirements": "x", "target": true}', "target", "valid string"),
        ("/api/requirements", b"[1, 2]", "body", "dictionary"),
        ("/api/requirements", b'"just a string"', "body", "dictionary"),
        ("/api/requirements", b'{"requirements": ', 17, "JSON decode error"),
        ("/api/projects/x/rollback", b'{"version": "x"}', "version", "valid integer"),
        ("/api/projects/x/rollback", b'{"version": 1.5}', "version", "valid integer"),
        ("/api/projects/x/rollback", b'{"version": 0}', "version", "greater than or equal to 1"),
        ("/api/projects/x/changes", b'{"request": []}', "request", "valid string"),
    ],
)
def test_wrong_types_are_422_naming_the_field(
    client: TestClient, acme: Tenant, guard: Callable[[], None], path: str, body: bytes, field: Any, words: str
) -> None:
    r = post_raw(client, acme, path, body)
    assert_4xx(r, 422)
    assert any(e["loc"][-1] == field and words in e["msg"] for e in r.json()["detail"]), r.json()
    guard()


def test_wrong_query_types_are_422_naming_each_parameter(client: TestClient, acme: Tenant) -> None:
    r = client.get("/api/projects?limit=abc&offset=-1&status=bogus", headers=acme.headers)
    assert_4xx(r, 422)
    assert {e["loc"][-1] for e in r.json()["detail"]} == {"limit", "offset", "status"}


def test_a_block_with_wrong_field_types_is_422_without_echoing_the_input(
    client: TestClient, acme: Tenant, guard: Callable[[], None]
) -> None:
    r = client.put("/api/blocks/pombolt-netlify/nf", json={"token": 5, "poll_interval": "soon"}, headers=acme.headers)
    assert_4xx(r, 422)
    assert {e["loc"][-1] for e in r.json()["detail"]} == {"token", "poll_interval"}
    assert "soon" not in r.text  # a Block body may hold secrets: never echoed
    guard()


@pytest.mark.parametrize(
    "body", [b'{"requirements": "\xff\xfe"}', b'{"requirements": ' + b"[" * 5000 + b"]" * 5000 + b"}"]
)
def test_undecodable_or_absurdly_nested_json_is_400(
    client: TestClient, acme: Tenant, guard: Callable[[], None], body: bytes
) -> None:
    assert_4xx(post_raw(client, acme, "/api/requirements", body), 400)
    guard()


# --- unicode, SQL and HTML are text -----------------------------------------------------------------------------

LITERALS = {
    "rtl-override": "invoice \u202egpj.exe and \u2067isolate\u2069",
    "zero-width": "a\u200bb\u200cc\u200dd\u2060e\ufeff",
    "del-and-c1-controls": "before \x7f after \x85\x9b31m red",
    "emoji": "a \U0001f345 timer \U0001f468\u200d\U0001f469\u200d\U0001f467 family \U0001f3f3\ufe0f\u200d\U0001f308",
    "combining": "Z\u0351\u0352\u0353a\u0300\u0301\u0302l\u0303\u0304g\u0305o",
    "very-long": "\U0001f600" * 20_000,
    "sql-drop": "'; DROP TABLE run; --",
    "sql-or": "x' OR '1'='1'; DELETE FROM project WHERE '1'='1",
    "sql-comment": 'a" /* */ UNION SELECT key_hash FROM apikey --',
    "html-img": '<img src=x onerror="alert(document.cookie)">',
    "html-script": "</p><script>fetch('/api/projects')</script><p>",
    "html-entities": "&lt;b&gt; &amp; <!-- --> <![CDATA[ x ]]>",
}


def as_stored(value: str) -> str:
    """The documented rewrite of requirements text (C0 controls but tab, CR and LF are refused before it):
    NFC, trimmed, control and format characters dropped but line breaks, tabs and the joiners (ZWJ, ZWNJ)."""
    text = unicodedata.normalize("NFC", value).strip()
    return "".join(c for c in text if c in "\n\t\u200c\u200d" or unicodedata.category(c)[0] != "C")


def test_invisible_and_format_characters_are_dropped_not_stored(client: TestClient, store: Store, acme: Tenant) -> None:
    value = "\ufeffpay \u202eexe.pdf\u202c a\u200bb \x7fdel \x9b31m crlf\r\n"
    r = client.post("/api/requirements", json={"requirements": value}, headers=acme.headers)
    assert r.status_code == 202, r.text
    assert store.get_run(r.json()["run_id"], "acme").requirements == "pay exe.pdf ab del 31m crlf"


@pytest.mark.parametrize(
    "value", ["a\x00b", "before \x00 after", "\x1b[31m red", "bell\x07", "back\x08space", "\x0bvt"]
)
def test_nul_and_other_c0_controls_in_requirements_are_a_field_422(
    client: TestClient, acme: Tenant, guard: Callable[[], None], value: str
) -> None:
    r = client.post("/api/requirements", json={"requirements": value}, headers=acme.headers)
    assert_4xx(r, 422)
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body", "requirements"] and "control character U+00" in error["msg"], error
    guard()


def test_emoji_sequences_and_joined_scripts_survive_whole(client: TestClient, store: Store, acme: Tenant) -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji, held together by ZWJ
    rainbow_flag = "\U0001f3f3\ufe0f\u200d\U0001f308"
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # ZWNJ is spelling here
    value = f"a {family} planner with a {rainbow_flag} theme, {persian}"
    r = client.post("/api/requirements", json={"requirements": value}, headers=acme.headers)
    assert r.status_code == 202, r.text
    assert store.get_run(r.json()["run_id"], "acme").requirements == value


@pytest.mark.parametrize("label", sorted(LITERALS))
def test_text_fields_are_stored_and_returned_literally(
    client: TestClient, store: Store, acme: Tenant, guard: Callable[[], None], label: str
) -> None:
    value = LITERALS[label]
    stored = as_stored(value)
    r = client.post("/api/requirements", json={"requirements": value}, headers=acme.headers)
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert store.get_run(accepted["run_id"], "acme").requirements == stored
    shown = client.get(accepted["status_url"], headers=acme.headers)
    assert shown.status_code == 200 and shown.headers["content-type"] == "application/json"
    assert shown.json()["latest_run"]["requirements"] == stored

    change = client.post(
        f"/api/projects/{accepted['project_id']}/changes", json={"request": value}, headers=acme.headers
    )
    assert change.status_code in (202, 409), change.text  # no live version yet, or a run in progress
    assert change.status_code == 202 or "live version" in change.json()["detail"]
    assert set(inspect(store.engine).get_table_names()) >= {"run", "project", "apikey", "tenant"}


def test_sql_in_an_idempotency_key_and_in_ids_is_only_text(
    client: TestClient, acme: Tenant, guard: Callable[[], None]
) -> None:
    headers = {**acme.headers, "Idempotency-Key": "k'; DROP TABLE idempotencyrecord; --"}
    first = client.post("/api/requirements", json={"requirements": REQ}, headers=headers)
    again = client.post("/api/requirements", json={"requirements": REQ}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json()["run_id"] == first.json()["run_id"] and again.headers["idempotent-replayed"] == "true"
    r = client.get("/api/projects/x' OR '1'='1", headers=acme.headers)
    assert_4xx(r, 404)
    assert r.json()["detail"] == "no project \"x' OR '1'='1\""


@pytest.mark.parametrize(
    "name", ["'; DROP TABLE run; --", "<img src=x onerror=alert(1)>", "../../etc", "a\u202eb", "a\x00b", "x" * 64]
)
def test_a_hostile_project_name_is_a_field_422(
    client: TestClient, acme: Tenant, guard: Callable[[], None], name: str
) -> None:
    r = client.post("/api/requirements", json={"requirements": REQ, "name": name}, headers=acme.headers)
    assert_4xx(r, 422)
    assert any(e["loc"][-1] == "name" and "pattern" in e["msg"] for e in r.json()["detail"])
    guard()


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/requirements", b'{"requirements": "a \\ud800 b"}'),
        ("POST", "/api/requirements", b'{"requirements": "x", "name": "\\udc00"}'),
        ("POST", "/api/requirements", b'{"requirements": "x", "\\ud83d": 1}'),
        ("POST", "/api/projects/x/changes", b'{"request": "\\udfff"}'),
        ("PUT", "/api/blocks/pombolt-netlify/nf", b'{"token": "\\ud800", "api_url": "http://127.0.0.1:1"}'),
        ("POST", "/api/requirements", b'{"requirements": "x", "cleanup_on_failure": 1e999}'),
        ("POST", "/api/requirements", b'{"requirements": "x", "cleanup_on_failure": NaN}'),
        ("POST", "/api/projects/x/rollback", b'{"version": -Infinity}'),
    ],
)
def test_lone_surrogates_and_non_finite_numbers_are_422(
    store: Store, acme: Tenant, guard: Callable[[], None], method: str, path: str, body: bytes
) -> None:
    from api.app import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as raw_client:
        r = raw_client.request(method, path, content=body, headers={**acme.headers, "Content-Type": "application/json"})
    assert_4xx(r, 422)
    guard()


def test_a_paired_surrogate_escape_is_an_ordinary_character(
    client: TestClient, store: Store, acme: Tenant, guard: Callable[[], None]
) -> None:
    r = post_raw(client, acme, "/api/requirements", b'{"requirements": "tomato \\ud83c\\udf45"}')
    assert r.status_code == 202, r.text
    assert store.get_run(r.json()["run_id"], "acme").requirements == "tomato \U0001f345"


# --- the status page renders text as text -----------------------------------------------------------------------


def test_the_status_page_script_never_turns_server_data_into_markup() -> None:
    source = (PAGE_DIR / "app.js").read_text()
    sinks = r"\.(innerHTML|outerHTML)\s*[+]?=|insertAdjacentHTML|document\.write|\beval\s*\(|new\s+Function|setHTML"
    assert re.findall(sinks, source) == []
    assert re.findall(r"setTimeout\s*\(\s*['\"`]|setInterval\s*\(\s*['\"`]", source) == []  # no string timers
    for selector in (".name", ".requirements", ".error-text", ".status"):
        assert re.search(rf'querySelector\("{re.escape(selector)}"\)\.textContent = ', source), selector
    # links from the server are set only through setLink, which accepts http(s) URLs only
    assert "if (url && /^https?:\\/\\//.test(url)) { anchor.href = url;" in source
    assert len(re.findall(r"\.href\s*=", source)) == 1


def _chromium() -> str:
    path = os.environ.get("POMBOLT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    message = "TOOL NOT AVAILABLE: chromium (status page browser test); scripts/test installs it with apt as root"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def test_hostile_text_shows_as_text_in_a_real_browser(live_server: str, store: Store, acme: Tenant) -> None:
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    executable = _chromium()
    hostile = '<img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script> \u202eevil'
    api = httpx.Client(base_url=live_server, headers=acme.headers, timeout=10)
    accepted = api.post("/api/requirements", json={"requirements": hostile, "name": "hostile"}).json()
    project = store.find_project("acme", "hostile")
    assert project is not None
    failed = store.create_run(project, hostile, kind=store.get_run(accepted["run_id"]).kind)  # raw, uncleaned
    message = '<img src=y onerror="window.__pwned=3"> javascript:alert(1)'
    store.transition(failed, RunStatus.failed, error_phase="deploy", error_code="phase.deploy", error_message=message)
    api.close()

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"]  # fmt: skip
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=args)
        try:
            page = browser.new_context().new_page()
            page.goto(live_server + "/")
            page.fill("#api-key", acme.key)
            page.click("#key-form button[type=submit]")
            page.wait_for_selector(".project .error:not([hidden])", timeout=10_000)
            card = page.locator(".project").first
            assert card.locator(".name").inner_text() == "hostile"
            assert card.locator(".requirements").inner_text() == hostile
            assert card.locator(".error-text").inner_text() == f"Failed in deploy (phase.deploy): {message}"
            assert card.locator("img, script").count() == 0
            assert page.locator("#projects img, #projects script").count() == 0
            assert page.evaluate("window.__pwned") is None
            # the first run's requirements, as the API returns them, are text too
            assert store.get_run(accepted["run_id"]).requirements == as_stored(hostile)
        finally:
            browser.close()


# --- path tricks and other tenants' ids ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/projects/..%2f..%2fetc%2fpasswd",
        "/api/projects/%2e%2e",
        "/api/projects/%2e%2e%2f%2e%2e/files",
        "/api/projects/..%5c..%5cwindows",
        "/api/projects/%252e%252e%252f",
        "/api/projects/%00",
        "/api/projects/%ff%fe",
        "/api/projects/" + "a" * 4000,
        "/..%2f..%2fetc%2fpasswd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2f..%2f..%2fapi%2fapp.py",
        "/app.js%00.html",
    ],
)
def test_path_tricks_in_ids_are_404_and_read_nothing_outside(
    client: TestClient, acme: Tenant, guard: Callable[[], None], path: str
) -> None:
    for method in ("GET", "POST"):
        r = client.request(method, path, headers=acme.headers)
        assert r.status_code in (404, 405), f"{method} {path}: {r.status_code} {r.text[:200]}"
        assert "root:" not in r.text and "create_app" not in r.text
    guard()


def test_path_tricks_in_block_names_are_refused(client: TestClient, acme: Tenant, guard: Callable[[], None]) -> None:
    for path in ("/api/blocks/pombolt-netlify/%2e%2e", "/api/blocks/pombolt-netlify/..%2f..%2fx"):
        r = client.put(path, json={"token": "t"}, headers=acme.headers)
        assert r.status_code in (404, 405, 422), f"{path}: {r.status_code} {r.text[:200]}"
    r = client.put("/api/blocks/%2e%2e/nf", json={"token": "t"}, headers=acme.headers)
    assert_4xx(r, 404)
    assert "no Block type '..'" in r.json()["detail"]
    guard()


def test_another_tenants_ids_are_404_and_change_nothing(
    client: TestClient, acme: Tenant, other: dict[str, str], guard: Callable[[], None]
) -> None:
    theirs = other["project_id"]
    calls = [
        ("GET", f"/api/projects/{theirs}", None),
        ("GET", f"/api/projects/{theirs}/files", None),
        ("GET", f"/api/projects/{theirs}/versions", None),
        ("POST", f"/api/projects/{theirs}/retry", None),
        ("POST", f"/api/projects/{theirs}/cancel", None),
        ("POST", f"/api/projects/{theirs}/changes", {"request": "make it mine"}),
        ("POST", f"/api/projects/{theirs}/rollback", {"version": 1}),
        ("GET", f"/api/projects/{other['run_id']}", None),
    ]
    for method, path, body in calls:
        r = client.request(method, path, json=body, headers=acme.headers)
        assert_4xx(r, 404)
        assert "no project" in r.json()["detail"] or "not found" in r.json()["detail"].lower(), r.json()
    listed = client.get("/api/projects", headers=acme.headers).json()["items"]
    assert theirs not in {p["id"] for p in listed}
    guard()


def test_the_same_idempotency_key_in_two_tenants_makes_two_runs(
    client: TestClient, store: Store, acme: Tenant, globex: Tenant
) -> None:
    key = {"Idempotency-Key": "shared-key"}
    mine = client.post("/api/requirements", json={"requirements": REQ}, headers={**acme.headers, **key})
    theirs = client.post("/api/requirements", json={"requirements": "other"}, headers={**globex.headers, **key})
    assert mine.status_code == theirs.status_code == 202  # another tenant's key is not a conflict
    assert mine.json()["run_id"] != theirs.json()["run_id"]
    assert store.get_run(theirs.json()["run_id"], "globex").requirements == "other"


# --- huge idempotency keys and malformed Authorization headers -----------------------------------------------------


@pytest.mark.parametrize("size", [201, 10_000, 60_000])
def test_a_huge_idempotency_key_is_422(client: TestClient, acme: Tenant, guard: Callable[[], None], size: int) -> None:
    r = client.post(
        "/api/requirements", json={"requirements": REQ}, headers={**acme.headers, "Idempotency-Key": "k" * size}
    )
    assert_4xx(r, 422)
    assert any(e["loc"][-1] == "idempotency-key" and "at most 200" in e["msg"] for e in r.json()["detail"])
    guard()


def test_a_header_too_big_for_the_server_is_refused_with_a_4xx(
    live_server: str,
    acme: Tenant,
    store: Store,
) -> None:
    before = footprint(store)
    with httpx.Client(base_url=live_server, timeout=10) as http:
        try:
            r = http.post(
                "/api/requirements",
                json={"requirements": REQ},
                headers={**acme.headers, "Idempotency-Key": "k" * 200_000},
            )
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            pass  # the server dropped the connection on the oversized header: also no 5xx, and nothing written
        else:
            assert 400 <= r.status_code < 500, r.status_code
    assert footprint(store) == before


MALFORMED = [
    "",
    "Bearer",
    "Bearer ",
    "Bearer  \t ",
    "Basic YWNtZTprZXk=",
    "Token pb_something",
    "Bearer pb_" + "A" * 100_000,
    "Bearer pb_'; DROP TABLE apikey; --",
    "Bearer pb_\u00e9\u00e8\u00ff",
    "Bearer ../../etc/passwd",
    "Bearer,Bearer",
    "\u00ff\u00fe",
]


@pytest.mark.parametrize("value", MALFORMED, ids=[f"auth{i}" for i in range(len(MALFORMED))])
def test_malformed_authorization_is_401_and_writes_nothing(
    client: TestClient, guard: Callable[[], None], value: str
) -> None:
    r = client.post(
        "/api/requirements", json={"requirements": REQ}, headers=[(b"Authorization", value.encode("latin-1"))]
    )
    assert_4xx(r, 401)
    assert r.headers["www-authenticate"] == "Bearer"
    guard()


def test_a_key_glued_to_extra_words_or_another_scheme_is_401(
    client: TestClient, acme: Tenant, guard: Callable[[], None]
) -> None:
    for value in (
        f"Bearer {acme.key} extra",
        f"Bearer {acme.key}\x00",
        f"Basic {acme.key}",
        acme.key,
        f"Bearer {acme.key[:-1]}",
    ):
        r = client.post("/api/requirements", json={"requirements": REQ}, headers={"Authorization": value})
        assert_4xx(r, 401)
    guard()


def test_the_data_dir_holds_nothing_a_hostile_request_named(client: TestClient, acme: Tenant, data_dir: Path) -> None:
    for path in ("/api/projects/..%2f..%2fpwned", "/api/blocks/pombolt-netlify/..%2fpwned"):
        client.put(path, json={"token": "t"}, headers=acme.headers)
        client.post(path, json={"requirements": REQ}, headers=acme.headers)
    assert not list(data_dir.parent.rglob("pwned*"))
