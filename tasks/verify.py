"""Phase ``verify``: fetch the live URL until it serves the deployed ``index.html`` (bounded in time).

Each try is one :func:`tasks.livecheck.probe_index`, the same fetch-and-compare the scheduled re-checks of
live sites use; the expected hash comes with the build's result (:class:`~tasks.models.SiteRef`).
"""

from __future__ import annotations

import time

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from core.errors import PhaseFailed, VerifyFailed
from core.settings import get_settings
from tasks._phase import PhaseContext, phase_task
from tasks.livecheck import IndexProbe, probe_index
from tasks.models import VerifyResult


@phase_task("verify", timeout=get_settings().timeouts.task_verify, cache=False)
def verify(run_id: str, tenant_id: str, url: str, index_sha256: str | None) -> VerifyResult:
    """Poll ``url`` until its ``index.html`` hashes to ``index_sha256``, the site snapshot's (bounded in time).

    Raises:
        PhaseFailed: When the site has no ``index.html`` to compare.
        VerifyFailed: When the URL did not serve it in time.
    """
    if index_sha256 is None:
        raise PhaseFailed("the site snapshot has no index.html to verify; the build produced no entry page")
    request_id = PhaseContext(run_id).run.request_id
    timeouts = get_settings().timeouts
    started = time.monotonic()
    probes: list[IndexProbe] = []

    def attempt() -> IndexProbe:
        probes.append(probe_index(url, index_sha256, request_id=request_id))
        return probes[-1]

    polling = Retrying(
        stop=stop_after_delay(max(timeouts.task_verify - 10, 5)),
        wait=wait_fixed(timeouts.verify_poll),
        retry=retry_if_result(lambda probe: not probe.ok),
    )
    try:
        polling(attempt)
    except RetryError as exc:
        last = probes[-1].describe() if probes else "no answer yet"
        raise VerifyFailed(f"{url} did not serve the deployed index.html after {len(probes)} tries: {last}") from exc
    seconds = round(time.monotonic() - started, 3)
    return VerifyResult(url=url, index_sha256=index_sha256, attempts=len(probes), seconds=seconds)
