"""The outbox dispatcher (DESIGN §3.2): queued runs → Prefect flow runs of ``requirements-to-deployment/default``.

Each queued run becomes one flow run with ``parameters={"run_id": ...}`` and ``idempotency_key=run_id``, so a
dispatcher that crashes after creating the flow run, or two dispatchers racing, never start the work twice
(Prefect returns the existing flow run for the same key). While Prefect is unreachable the runs simply stay
``queued``; the next round sends them. Run it inside the API process (woken at once by new rows) or alone:
``python -m ops.dispatcher``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import httpx

from core.concurrency import ensure_tenant_limit
from core.errors import ConcurrentUpdate, IllegalTransition
from core.models import RunStatus
from core.store import RunClaim, Store

log = logging.getLogger("pombolt.dispatcher")


class PrefectUnreachable(Exception):
    """Prefect's API did not answer (the runs stay queued)."""


class Dispatcher:
    """Moves queued runs to Prefect.

    Args:
        store: The state store.
        deployment: ``flow-name/deployment-name`` every run goes to.
        api_url: Prefect API URL; default the process's ``PREFECT_API_URL``.
        poll_seconds: Wait between rounds when nothing wakes it.
    """

    def __init__(
        self,
        store: Store,
        *,
        deployment: str = "requirements-to-deployment/default",
        api_url: str | None = None,
        poll_seconds: float = 2.0,
    ) -> None:
        self.store = store
        self.deployment = deployment
        self.api_url = api_url
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._deployment_id: UUID | None = None
        self._tenant_limits: set[str] = set()
        self.last_error: str | None = None

    @contextmanager
    def _client(self) -> Iterator[Any]:
        from prefect.client.orchestration import SyncPrefectClient, get_client
        from prefect.settings import PREFECT_API_AUTH_STRING

        if self.api_url:
            with SyncPrefectClient(self.api_url, auth_string=PREFECT_API_AUTH_STRING.value() or None) as client:
                yield client
        else:
            with get_client(sync_client=True) as client:
                yield client

    def notify(self) -> None:
        """Wake the dispatcher now (a new run was queued)."""
        self._wake.set()

    def dispatch_once(self, limit: int = 50) -> int:
        """Send the queued runs to Prefect, one claimed run at a time (at most ``limit`` per call).

        Returns:
            How many runs were marked dispatched by this call.

        Raises:
            PrefectUnreachable: When Prefect did not answer; the runs stay queued.
        """
        sent = 0
        seen: set[str] = set()
        try:
            with self._client() as client:
                while len(seen) < limit:
                    with self.store.claim_queued_run(seen) as claim:
                        if claim is None:
                            break
                        seen.add(claim.run.id)
                        sent += self._send(client, claim)
        except (httpx.HTTPError, OSError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            raise PrefectUnreachable(
                f"Prefect API is unreachable ({type(exc).__name__}); queued runs stay queued and go out when it "
                "answers again"
            ) from exc
        self.last_error = None
        return sent

    def _deployment(self, client: Any) -> UUID:
        if self._deployment_id is None:
            from prefect.exceptions import ObjectNotFound

            try:
                self._deployment_id = client.read_deployment_by_name(self.deployment).id
            except ObjectNotFound as exc:
                raise PrefectUnreachable(
                    f"deployment {self.deployment!r} does not exist yet; start 'pombolt serve' (it serves the "
                    "deployment) or deploy prefect.yaml"
                ) from exc
        assert self._deployment_id is not None
        return self._deployment_id

    def _send(self, client: Any, claim: RunClaim) -> int:
        run = claim.run
        if run.tenant_id not in self._tenant_limits:  # made here, serially, not by racing first runs
            ensure_tenant_limit(run.tenant_id, client=client)
            self._tenant_limits.add(run.tenant_id)
        flow_run = client.create_flow_run_from_deployment(
            self._deployment(client),
            parameters={"run_id": run.id},
            idempotency_key=run.id,
            name=f"run-{run.id[:12]}",
            tags=["pombolt", f"tenant:{run.tenant_id}", f"request:{run.request_id}"],
        )
        try:
            claim.mark_dispatched(str(flow_run.id))
        except (IllegalTransition, ConcurrentUpdate):
            # moved on meanwhile: by another dispatcher (the idempotency key kept one flow run), or cancelled
            # by a user, in which case Prefect must not run it
            if self.store.reload(run).status == RunStatus.cancelled:
                from prefect.states import Cancelling

                client.set_flow_run_state(flow_run.id, Cancelling(), force=True)
            return 0
        log.info("run %s dispatched as flow run %s (request id %s)", run.id, flow_run.id, run.request_id)
        return 1

    # --- background loop ------------------------------------------------------------------------------
    def run_forever(self) -> None:
        """Dispatch until :meth:`stop` is called; wake on :meth:`notify` or every ``poll_seconds``."""
        while not self._stop.is_set():
            try:
                self.dispatch_once()
            except PrefectUnreachable as exc:
                log.warning("%s", exc)
            except Exception:  # a bad round must not end the loop; the next round tries again
                log.exception("dispatch round failed")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def start(self) -> None:
        """Run :meth:`run_forever` in a daemon thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.run_forever, name="pombolt-dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the background thread (bounded wait)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
