"""Phase ``verify``: fetch the live URL until it serves the deployed ``index.html`` (bounded)."""

from __future__ import annotations

import hashlib
import time

import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from core.errors import PhaseFailed, VerifyFailed
from core.settings import get_settings
from tasks.common import retry_options
from tasks.context import PhaseContext
from tasks.models import VerifyResult


class _NotYet(Exception):
    """The live site does not serve the expected bytes yet."""


def index_sha(ctx: PhaseContext, site_snapshot_id: str) -> str:
    """SHA-256 of ``index.html`` in a site snapshot."""
    entry = ctx.snapshots.manifest(site_snapshot_id).by_path().get("index.html")
    if entry is None:
        raise PhaseFailed("the site snapshot has no index.html to verify; the build produced no entry page")
    return entry.sha256


@task(name="verify", cache_policy=NO_CACHE, timeout_seconds=get_settings().timeouts.task_verify, **retry_options())
def verify(run_id: str, tenant_id: str, site_snapshot_id: str, url: str) -> VerifyResult:
    """Poll the live URL until its ``index.html`` hashes to the site snapshot's (bounded in time)."""
    ctx = PhaseContext(run_id)
    expected = index_sha(ctx, site_snapshot_id)
    timeouts = get_settings().timeouts
    started = time.monotonic()
    last = "no answer yet"
    attempts = 0
    headers = {"X-Request-Id": ctx.run.request_id, "Cache-Control": "no-cache"}
    with httpx.Client(timeout=httpx.Timeout(10.0), follow_redirects=True, headers=headers) as client:
        try:
            for attempt in Retrying(
                stop=stop_after_delay(max(timeouts.task_verify - 10, 5)),
                wait=wait_fixed(timeouts.verify_poll),
                retry=retry_if_exception_type(_NotYet),
            ):
                with attempt:
                    attempts += 1
                    try:
                        response = client.get(url)
                    except httpx.HTTPError as exc:
                        last = f"{type(exc).__name__}"
                        raise _NotYet from exc
                    got = hashlib.sha256(response.content).hexdigest()
                    if response.status_code != 200 or got != expected:
                        last = f"HTTP {response.status_code}, index sha256 {got[:12]} (want {expected[:12]})"
                        raise _NotYet
        except RetryError as exc:
            raise VerifyFailed(f"{url} did not serve the deployed index.html after {attempts} tries: {last}") from exc
    return VerifyResult(url=url, index_sha256=expected, attempts=attempts, seconds=round(time.monotonic() - started, 3))
