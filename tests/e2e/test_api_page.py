# ruff: noqa: F811 - the shared API fixtures are imported by name
"""The status page in a real browser (Playwright driving the system Chromium) against the real API.

Submits the form, runs the flow for real, checks the phase elements complete in pipeline order, opens the
live link, and retries a failed run with the Retry button.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from core.models import RunStatus
from core.settings import get_settings
from core.store import Store
from tests.conftest import IN_CI
from tests.integration.api.conftest import Tenant, acme, live_server, make_tenant, store  # noqa: F401

PHASES = ["preflight", "generate", "check", "store", "publish", "build", "deploy", "verify"]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync"]  # fmt: skip

# Records, on every DOM change, which phases are completed: each snapshot must be a prefix of the pipeline.
OBSERVER = """
window.__snapshots = [];
new MutationObserver(() => {
  for (const li of document.querySelectorAll('.project')) {
    const done = [...li.querySelectorAll('.phase')].map(p => p.dataset.status === 'completed' ? 1 : 0).join('');
    const last = window.__snapshots[window.__snapshots.length - 1];
    if (done !== last) window.__snapshots.push(done);
  }
}).observe(document.body, {subtree: true, attributes: true, childList: true});
"""


def chromium() -> str:
    path = os.environ.get("POMBOLT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    message = "TOOL NOT AVAILABLE: chromium (status page browser test); scripts/test installs it with apt as root"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def page() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if IN_CI:
            pytest.fail("TOOL NOT AVAILABLE: the playwright package (pip install -e '.[test]')")
        pytest.skip("TOOL NOT AVAILABLE: the playwright package")
    executable = chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=ARGS)
        try:
            context = browser.new_context()
            yield context.new_page()
        finally:
            browser.close()


@pytest.fixture
def static_server() -> Iterator[None]:
    from blocks.targets.static_host import ensure_running, stop

    ensure_running(get_settings())
    yield
    stop(get_settings())


def test_page_submits_shows_phases_in_order_opens_live_site_and_retries(
    page: Any, live_server: str, store: Store, acme: Tenant, static_server: None
) -> None:
    from playwright.sync_api import expect  # imported here: the fixture skips loudly without playwright

    from flows.pipeline import requirements_to_deployment

    hostile = "a timer <img src=x onerror=alert(1)> & <b>bold</b>"
    page.goto(live_server + "/")
    page.fill("#api-key", acme.key)
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#submit-section:not([hidden])", timeout=10_000)
    page.evaluate(OBSERVER)
    page.fill("#requirements", hostile)
    page.fill("#name", "timer")
    page.click("#submit-button")
    page.wait_for_selector(".project[data-project-id]", timeout=10_000)
    card = page.locator(".project").first
    assert card.locator(".requirements").inner_text() == hostile  # shown as text, not markup
    assert card.locator(".requirements img").count() == 0

    project = store.find_project("acme", "timer")
    assert project is not None
    run = store.latest_run(project.id)
    assert run is not None
    requirements_to_deployment(run.id)  # the worker's part, for real, while the page polls

    # Playwright's expect() polls from its own injected script: the page's CSP (no 'unsafe-eval') stays on
    expect(page.locator(".project .phase[data-status=completed]")).to_have_count(8, timeout=20_000)
    snapshots: list[str] = [s for s in page.evaluate("window.__snapshots") if s]
    assert card.locator(".phase").evaluate_all("els => els.map(e => e.dataset.phase)") == PHASES
    assert snapshots[-1] == "1" * 8
    for snap in snapshots:  # completed phases always form a prefix: they light up in pipeline order
        assert snap == "1" * snap.count("1") + "0" * (8 - snap.count("1")), snapshots
    assert card.locator(".status").inner_text() == "verified"

    live = card.locator("a.live")
    with page.context.expect_page() as popup_info:
        live.click()
    popup = popup_info.value
    popup.wait_for_load_state()
    assert popup.url == store.versions(project.id)[-1].live_url
    assert popup.locator("body").inner_text().strip() != ""

    # a failed run shows its error and a Retry button that starts a new run
    failed = store.create_run(project, "a timer", kind=run.kind)
    store.transition(
        failed, RunStatus.failed, error_phase="deploy", error_code="phase.deploy", error_message="target said <no>"
    )
    page.wait_for_selector(".project .error:not([hidden])", timeout=10_000)
    assert "Failed in deploy (phase.deploy): target said <no>" in card.locator(".error-text").inner_text()
    card.locator(".retry").click()
    expect(page.locator("#message")).to_have_text(re.compile(r"^Retry queued"), timeout=10_000)
    latest = store.latest_run(project.id)
    assert latest is not None and latest.kind == "retry" and latest.parent_run_id == failed.id
    assert latest.status == RunStatus.queued
