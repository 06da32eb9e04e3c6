"""Bookkeeping around each phase: state-store rows, Prefect events, progress and summary artifacts.

The pipeline flow stays a list of phases; everything a phase must record on the way (``Run`` and
``PhaseRun`` rows, ``pombolt.run.<phase>.<started|completed|failed>`` events, the progress artifact, the
error on failure) happens here, in one place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from prefect import Task, get_run_logger, tags
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.client.schemas.objects import State
from prefect.context import get_run_context
from prefect.events import emit_event

from core.errors import PomBoltError
from core.models import PHASES, Phase, PhaseStatus, Project, Run, RunStatus
from core.redaction import safe_message
from core.runtime import get_snapshots, get_store
from core.store import Store
from flows.tracing import phase_span
from tasks._phase import Reuse, still_holds

T = TypeVar("T")
log = logging.getLogger("pombolt.flow")


def _set_request_id(request_id: str) -> None:
    from core import redaction as request_log
    from core.redaction import set_request_id

    set_request_id(request_id)  # outgoing calls send it as X-Request-Id
    request_log.install()  # every log record made in this context carries it as ``request_id``


class RunTracker:
    """Tracks one run through its phases."""

    def __init__(self, run_id: str) -> None:
        self.store: Store = get_store()
        self.run: Run = self.store.get_run(run_id)
        self.project: Project = self.store.get_project(self.run.project_id)
        self.timings: dict[str, dict[str, Any]] = {}
        self._progress_id: Any = None
        _set_request_id(self.run.request_id)

    # --- run level ----------------------------------------------------------------------------------
    def start(self) -> None:
        """Mark the run running and remember the flow run id."""
        flow_run_id = None
        try:
            flow_run_id = str(get_run_context().flow_run.id)  # type: ignore[union-attr]
        except Exception:  # not inside a flow run (plain function call)
            flow_run_id = None
        changes: dict[str, Any] = {"phase": None, "error_phase": None, "error_code": None, "error_message": None}
        if flow_run_id:
            changes["flow_run_id"] = flow_run_id
        self.run = self.store.transition(self.store.reload(self.run), RunStatus.running, **changes)
        self._progress_id = create_progress_artifact(
            progress=0.0, key=f"progress-{self.run.id[:12]}", description="Pipeline phases completed"
        )
        self.logger().info(
            "run %s of project %s started (request id %s)", self.run.id, self.project.name, self.run.request_id
        )

    def logger(self) -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
        """Prefect's run logger when inside a run, else ours."""
        try:
            return get_run_logger()
        except Exception:
            return log

    def update(self, **changes: Any) -> Run:
        """Write fields of the run (optimistic concurrency; re-reads first)."""
        self.run = self.store.update(self.store.reload(self.run), **changes)
        return self.run

    def fail(self, phase: Phase, exc: BaseException) -> None:
        """Record the error and mark the run failed."""
        code, retryable = (exc.code, exc.retryable) if isinstance(exc, PomBoltError) else ("internal", False)
        message = safe_message(exc)  # redacted and bounded: foreign exception text may quote a secret
        run = self.store.reload(self.run)
        if run.status == RunStatus.running:
            self.run = self.store.transition(
                run,
                RunStatus.failed,
                error_phase=phase.value,
                error_code=code,
                error_message=message,
                error_retryable=retryable,
            )
        self.summary()

    def verified(self) -> Run:
        """Mark the run verified and write the new version."""
        self.run = self.store.transition(self.store.reload(self.run), RunStatus.verified, phase=Phase.verify)
        self.store.add_version(self.run)
        self.summary()
        return self.run

    # --- phase level --------------------------------------------------------------------------------
    def _event(self, phase: Phase, what: str, **payload: Any) -> None:
        emit_event(
            event=f"pombolt.run.{phase.value}.{what}",
            resource={
                "prefect.resource.id": f"pombolt.run.{self.run.id}",
                "prefect.resource.name": self.project.name,
                "pombolt.project.id": self.project.id,
                "pombolt.tenant.id": self.run.tenant_id,
                "pombolt.request.id": self.run.request_id,
            },
            payload={"phase": phase.value, **payload},
        )

    def skip(self, phase: Phase, reason: str) -> None:
        """Record a phase that does not apply to this run."""
        self.store.finish_phase(self.run.id, phase, PhaseStatus.skipped, detail={"reason": reason})
        self.timings[phase.value] = {"status": "skipped", "cached": False, "seconds": 0.0}
        self._progress(phase)

    def call(
        self,
        phase: Phase,
        task: Task[..., Any],
        *,
        detail: Callable[[Any], dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run one phase's task, recording start, end, cached-ness and failure.

        A cached result the phase no longer trusts (:func:`tasks._phase.still_holds`: what it points to was lost
        from storage, or the branch moved on) is computed again, past the cache.

        Raises:
            Exception: The task's error, after it was recorded on the run.
        """
        with phase_span(self.run.id, phase.value, self.run.request_id) as span:
            try:
                result, cached = self._call(phase, task, detail, kwargs)
                if cached and not still_holds(task, result, self._reuse()):
                    self.logger().warning("phase %s: its cached result no longer holds; running it again", phase.value)
                    result, cached = self._call(phase, task.with_options(refresh_cache=True), detail, kwargs)
            except BaseException as exc:
                span.fail(exc)
                raise
            span.set("pombolt.cached", cached)
            return result

    def _reuse(self) -> Reuse:
        return Reuse(snapshots=get_snapshots(self.run.tenant_id), project=self.project)

    def _call(
        self,
        phase: Phase,
        task: Task[..., Any],
        detail: Callable[[Any], dict[str, Any]] | None,
        kwargs: dict[str, Any],
    ) -> tuple[Any, bool]:
        self.run = self.update(phase=phase)
        self.store.start_phase(self.run.id, phase)
        self._event(phase, "started")
        started = time.monotonic()
        with tags(f"request:{self.run.request_id}"):  # every task run is found by the run's request id
            state: State[Any] = task(**kwargs, return_state=True)
        seconds = round(time.monotonic() - started, 3)
        try:
            result = state.result()
        except BaseException as exc:
            self.store.finish_phase(
                self.run.id, phase, PhaseStatus.failed, detail={"error": getattr(exc, "message", str(exc))[:1000]}
            )
            self.timings[phase.value] = {"status": "failed", "cached": False, "seconds": seconds}
            self._event(
                phase,
                "failed",
                code=getattr(exc, "code", "internal"),
                message=str(getattr(exc, "message", type(exc).__name__))[:500],
            )
            self.fail(phase, exc)
            raise
        cached = state.name == "Cached"
        info = detail(result) if detail else {}
        self.store.finish_phase(self.run.id, phase, PhaseStatus.completed, cached=cached, detail=info)
        self.timings[phase.value] = {"status": "completed", "cached": cached, "seconds": seconds}
        self._event(phase, "completed", cached=cached, seconds=seconds)
        self._progress(phase)
        self.logger().info("phase %s %s in %.2fs", phase.value, "cached" if cached else "completed", seconds)
        return result, cached

    def _progress(self, phase: Phase) -> None:
        if self._progress_id is not None:
            done = PHASES.index(phase) + 1
            update_progress_artifact(artifact_id=self._progress_id, progress=100.0 * done / len(PHASES))

    # --- artifacts ----------------------------------------------------------------------------------
    def links(self) -> None:
        """Link artifacts for the repository and the live site."""
        if self.run.repository_url:
            create_link_artifact(
                key=f"repository-{self.project.id[:12]}",
                link=self.run.repository_url,
                link_text=f"{self.project.name} repository",
                description=f"Commit {self.run.commit_sha or ''}",
            )
        if self.run.live_url:
            create_link_artifact(
                key=f"live-site-{self.project.id[:12]}",
                link=self.run.live_url,
                link_text=f"{self.project.name} live site",
            )

    def summary(self) -> None:
        """A markdown summary of the run."""
        run = self.run
        rows = "\n".join(
            f"| {name} | {t['status']} | {'yes' if t['cached'] else 'no'} | {t['seconds']:.2f} |"
            for name, t in self.timings.items()
        )
        error = (
            f"\n**Failed in `{run.error_phase}`** (`{run.error_code}`): {run.error_message}\n" if run.error_code else ""
        )
        md = (
            f"# {self.project.name} — run `{run.id[:12]}` ({run.kind})\n\n"
            f"Status: **{run.status}**{error}\n\n"
            f"| phase | status | cached | seconds |\n|---|---|---|---|\n{rows}\n\n"
            f"Repository: {run.repository_url or '—'}  \nCommit: `{run.commit_sha or '—'}`  \n"
            f"Live URL: {run.live_url or '—'}  \n"
            f"LLM calls: {run.llm_calls}, tokens: {run.prompt_tokens} prompt + {run.completion_tokens} completion\n"
        )
        create_markdown_artifact(markdown=md, key=f"summary-{run.id[:12]}", description="Pom-Bolt run summary")
