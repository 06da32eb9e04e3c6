"""The reconciler: runs whose flow run crashed are started again; runs stuck too long are marked failed.

Run level of the retry layers (DESIGN §5). For every run that is ``dispatched`` or ``running`` it reads the
run's Prefect flow run (by ``flow_run_id``):

- ``Crashed`` (the worker or its flow-run process died): a new flow run of the same deployment is created
  with the same ``{"run_id": ...}`` and the run goes back to ``dispatched``. The pipeline caches each phase on
  its inputs (not on the run), so the new flow run resumes where the crashed one stopped and pays for
  nothing twice. After ``crash_restarts`` restarts the run is marked ``failed`` instead (a crash loop).
- Any other final state while our run is still open (the flow failed before it could record why, or was
  cancelled from the Prefect UI): the run is marked ``failed`` with that reason.
- No final state, but no progress for ``stuck_after_seconds``: the run is marked ``failed`` with the reason.
  Its flow run is left alone: cancelling it in Prefect would run the compensation hooks, which must only
  happen on a user's cancel; if it ever wakes up, its next write to the run is refused.

Every write is optimistic on the run row as it was read *before* Prefect was asked, so a flow run that moved
the run on meanwhile always wins over the reconciler. Run it as ``python -m ops.reconciler`` (or inside the
API process); any number may run, since a lost race only means another reconciler or the flow got there
first.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from core.errors import ConcurrentUpdate, IllegalTransition
from core.models import Run, RunStatus, utcnow
from core.redaction import safe_text
from core.settings import Settings, get_settings
from core.store import Store

log = logging.getLogger("pombolt.reconciler")

#: Error codes the reconciler writes on runs it fails.
CRASH_LOOP = "run.crash_loop"
STUCK = "run.stuck"
FLOW_RUN_ENDED = "run.flow_run_ended"

_OPEN = (RunStatus.dispatched, RunStatus.running)


@dataclass
class ReconcileReport:
    """What one pass did, by run id."""

    restarted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    unchanged: int = 0


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Reconciler:
    """Restarts crashed runs and fails stuck ones.

    Args:
        store: The state store.
        settings: Where ``stuck_after_seconds`` and ``crash_restarts`` come from.
        api_url: Prefect API URL; default the process's ``PREFECT_API_URL``.
        auth_string: Prefect server auth string; default the process's ``PREFECT_API_AUTH_STRING``.
        poll_seconds: Wait between passes of :meth:`run_forever`.
    """

    def __init__(
        self,
        store: Store,
        *,
        settings: Settings | None = None,
        api_url: str | None = None,
        auth_string: str | None = None,
        poll_seconds: float = 10.0,
    ) -> None:
        self.store = store
        self.settings = settings or get_settings()
        self.api_url = api_url
        self.auth_string = auth_string
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()

    @contextmanager
    def _client(self) -> Iterator[Any]:
        from prefect.client.orchestration import SyncPrefectClient, get_client

        if self.api_url:
            with SyncPrefectClient(self.api_url, auth_string=self.auth_string) as client:
                yield client
        else:
            with get_client(sync_client=True) as client:
                yield client

    def open_runs(self) -> list[Run]:
        """Runs that a flow run should be working on (``dispatched`` or ``running``), oldest first."""
        return self.store.runs_with_status(_OPEN)

    def reconcile_once(self) -> ReconcileReport:
        """One pass over every open run."""
        report = ReconcileReport()
        runs = self.open_runs()
        if not runs:
            return report
        with self._client() as client:
            for run in runs:
                try:
                    outcome = self._one(client, run)
                except (ConcurrentUpdate, IllegalTransition):
                    outcome = None  # the flow (or another reconciler) moved the run on first: it wins
                if outcome == "restarted":
                    report.restarted.append(run.id)
                elif outcome == "failed":
                    report.failed.append(run.id)
                else:
                    report.unchanged += 1
        return report

    def _one(self, client: Any, run: Run) -> str | None:
        flow_run = None
        if run.flow_run_id:
            from prefect.exceptions import ObjectNotFound

            try:
                flow_run = client.read_flow_run(UUID(run.flow_run_id))
            except ObjectNotFound:
                flow_run = None
        state = flow_run.state if flow_run is not None else None
        if state is not None and state.is_crashed():
            return self._restart(client, run, flow_run)
        if state is not None and state.is_final():
            self._fail(
                run,
                FLOW_RUN_ENDED,
                f"its flow run {run.flow_run_id} ended {state.name} without recording a result "
                f"({(state.message or 'no message')[:300]}); retry the project",
            )
            return "failed"
        since = _aware(run.started_at or run.dispatched_at or run.created_at)
        idle = utcnow() - since
        if idle > timedelta(seconds=self.settings.stuck_after_seconds):
            where = f"in phase {run.phase}" if run.phase else f"while {run.status}"
            self._fail(
                run,
                STUCK,
                f"no result after {int(idle.total_seconds())} s {where} "
                f"(limit {self.settings.stuck_after_seconds:.0f} s, POMBOLT_STUCK_AFTER_SECONDS); retry the project",
            )
            return "failed"
        return None

    def _restart(self, client: Any, run: Run, flow_run: Any) -> str:
        info = run.info()
        restarts = info.crash_restarts
        if restarts >= self.settings.crash_restarts:
            self._fail(
                run,
                CRASH_LOOP,
                f"its flow run crashed {restarts + 1} times (last: {flow_run.state.message or 'no message'}); "
                "the reconciler stopped restarting it — look at the worker's logs, then retry the project",
            )
            return "failed"
        if flow_run.deployment_id is None:
            self._fail(run, CRASH_LOOP, "its flow run crashed and was not started from a deployment; retry the project")
            return "failed"
        new = client.create_flow_run_from_deployment(
            flow_run.deployment_id,
            parameters={"run_id": run.id},
            idempotency_key=f"{run.id}:restart:{restarts + 1}",
            name=f"run-{run.id[:12]}-restart-{restarts + 1}",
            tags=["pombolt", f"tenant:{run.tenant_id}", "restarted"],
        )
        changes: dict[str, Any] = {
            "flow_run_id": str(new.id),
            "dispatched_at": utcnow(),
            "details": info.model_copy(
                update={
                    "crash_restarts": restarts + 1,
                    "crashed_flow_runs": [*info.crashed_flow_runs, str(flow_run.id)],
                }
            ).as_json(),
        }
        if run.status == RunStatus.running:
            self.store.transition(run, RunStatus.dispatched, **changes)
        else:  # crashed before the flow marked the run running: still dispatched, now to the new flow run
            self.store.update(run, **changes)
        log.warning("run %s: flow run %s crashed; restarted as flow run %s", run.id, flow_run.id, new.id)
        return "restarted"

    def _fail(self, run: Run, code: str, message: str) -> None:
        self.store.transition(
            run,
            RunStatus.failed,
            error_phase=run.phase.value if run.phase else None,
            error_code=code,
            error_message=safe_text(f"run {run.id[:12]}: {message}"),
            error_retryable=True,
        )
        log.warning("run %s marked failed: %s", run.id, message)

    # --- background loop ------------------------------------------------------------------------------
    def run_forever(self) -> None:
        """Reconcile every ``poll_seconds`` until :meth:`stop`."""
        while not self._stop.is_set():
            try:
                self.reconcile_once()
            except Exception:  # a bad pass (Prefect briefly down) must not end the loop; the next one retries
                log.exception("reconcile pass failed")
            self._stop.wait(self.poll_seconds)

    def stop(self) -> None:
        """End :meth:`run_forever` after the current pass."""
        self._stop.set()
