"""Runs and their phases: tables ``run`` and ``phaserun``.

Covers the run state machine (every status change is checked by :func:`~core.models.check_transition` and
written optimistically), the outbox (queued runs not yet handed to Prefect, claimed by a dispatcher with
:class:`RunClaim`), the phases of a run, and the figures read from runs: token and run counts for budgets,
counts and durations for metrics (the target outcomes join ``project`` and ``blockbinding``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, func, update
from sqlmodel import Session, col, select

from core.errors import ConcurrentUpdate, NotFound
from core.models import (
    TERMINAL,
    BlockBinding,
    Phase,
    PhaseRun,
    PhaseStatus,
    Project,
    Run,
    RunKind,
    RunStatus,
    check_transition,
    utcnow,
)
from core.store.engine import StoreEngine


class RunClaim:
    """A queued run claimed by a dispatcher, inside the transaction that holds its lock.

    Args:
        session: The session whose transaction holds the lock.
        run: The claimed run.
    """

    def __init__(self, session: Session, run: Run) -> None:
        self.session = session
        self.run = run

    def mark_dispatched(self, flow_run_id: str) -> None:
        """Record the flow run and move the run to ``dispatched`` (same transaction; commits).

        Raises:
            IllegalTransition: When the run is no longer queued.
            ConcurrentUpdate: When someone changed the run since it was claimed.
        """
        run = self.run
        check_transition(run.status, RunStatus.dispatched)
        now = utcnow()
        result = self.session.exec(
            update(Run)
            .where(col(Run.id) == run.id)
            .where(col(Run.version) == run.version)
            .values(status=RunStatus.dispatched, flow_run_id=flow_run_id, dispatched_at=now, version=run.version + 1)
        )
        self.session.commit()
        if result.rowcount != 1:
            raise ConcurrentUpdate(f"run {run.id} changed while it was being dispatched; it was not marked")


class TargetOutcome(NamedTuple):
    """Finished runs of one (target reference, Block slug, status) group, all tenants."""

    target_ref: str
    slug: str | None  # the tenant's Block binding's type slug; None when the reference is no binding
    status: RunStatus
    runs: int


_TOKENS = col(Run.prompt_tokens) + col(Run.completion_tokens)


class RunStore(StoreEngine):
    """Runs, their transitions and phases, the outbox claim and the figures read from runs."""

    # --- runs ---------------------------------------------------------------------------------------
    def create_run(
        self,
        project: Project,
        requirements: str,
        *,
        kind: RunKind = RunKind.create,
        parent_run_id: str | None = None,
        request_id: str | None = None,
    ) -> Run:
        """Insert a queued run for a project.

        Args:
            project: The project the run belongs to.
            requirements: What the run builds.
            kind: What the run does.
            parent_run_id: The run it follows on from, if any.
            request_id: The request that made it; default a new id.
        """
        run = Run(
            tenant_id=project.tenant_id,
            project_id=project.id,
            kind=kind,
            requirements=requirements,
            parent_run_id=parent_run_id,
        )
        if request_id:
            run.request_id = request_id
        return self._insert(run)

    def add_run(self, run: Run) -> Run:
        """Insert a run built by the caller (a change, rollback or retry run with its details)."""
        return self._insert(run)

    def get_run(self, run_id: str, tenant_id: str | None = None) -> Run:
        """Return a run (of the tenant, when given).

        Raises:
            NotFound: When absent or owned by another tenant.
        """
        with self.session() as s:
            row = s.get(Run, run_id)
        if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
            raise NotFound(f"no run {run_id!r}")
        return row

    def latest_run(self, project_id: str) -> Run | None:
        """The newest run of a project."""
        with self.session() as s:
            return s.exec(
                select(Run).where(Run.project_id == project_id).order_by(col(Run.created_at).desc()).limit(1)
            ).first()

    def runs(self, project_id: str) -> Sequence[Run]:
        """All runs of a project, oldest first."""
        with self.session() as s:
            return s.exec(select(Run).where(Run.project_id == project_id).order_by(col(Run.created_at))).all()

    def runs_with_status(self, statuses: Collection[RunStatus]) -> list[Run]:
        """All runs (all tenants) in one of ``statuses``, oldest first."""
        with self.session() as s:
            stmt = select(Run).where(col(Run.status).in_(list(statuses))).order_by(col(Run.created_at))
            return list(s.exec(stmt).all())

    def transition(self, run: Run, status: RunStatus, **changes: Any) -> Run:
        """Move a run to ``status`` (checked by the state machine) with optimistic concurrency.

        ``started_at`` is set when the run first starts running, ``finished_at`` when it ends.

        Raises:
            IllegalTransition: When the state machine forbids it.
            ConcurrentUpdate: When another writer got there first.
        """
        check_transition(run.status, status)
        if status == RunStatus.running and run.started_at is None:
            changes.setdefault("started_at", utcnow())
        if status in TERMINAL:
            changes.setdefault("finished_at", utcnow())
        return self.update(run, status=status, **changes)

    # --- the outbox ---------------------------------------------------------------------------------
    @contextmanager
    def claim_queued_run(self, skip: Collection[str] = ()) -> Iterator[RunClaim | None]:
        """Claim the oldest run waiting in the outbox (queued, not yet handed to Prefect), or None.

        On PostgreSQL the row is read ``FOR UPDATE SKIP LOCKED`` and stays locked until the block ends, so
        concurrent dispatchers never claim the same run; mark it with :meth:`RunClaim.mark_dispatched`,
        which writes in the same transaction. On SQLite the optimistic version check does the same job.

        Args:
            skip: Ids of runs not to claim (ones this dispatcher already failed to hand over).
        """
        stmt = select(Run).where(Run.status == RunStatus.queued, col(Run.flow_run_id).is_(None))
        if skip:
            stmt = stmt.where(col(Run.id).not_in(list(skip)))
        stmt = stmt.order_by(col(Run.created_at)).limit(1)
        if self.engine.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        with self.session() as s:
            run = s.exec(stmt).first()
            yield RunClaim(s, run) if run is not None else None
            s.rollback()  # releases the lock when nothing was marked

    # --- phases -------------------------------------------------------------------------------------
    def _phase_row(self, run_id: str, phase: Phase) -> PhaseRun | None:
        with self.session() as s:
            return s.exec(select(PhaseRun).where(PhaseRun.run_id == run_id, PhaseRun.phase == phase)).first()

    def start_phase(self, run_id: str, phase: Phase) -> PhaseRun:
        """Record that a phase started (restarting a row left by an earlier attempt).

        Raises:
            IntegrityError: When the run does not exist.
        """
        row = self._phase_row(run_id, phase)
        if row is None:
            return self._insert(PhaseRun(run_id=run_id, phase=phase))
        return self.update(row, status=PhaseStatus.running, started_at=utcnow(), ended_at=None, cached=False)

    def finish_phase(
        self,
        run_id: str,
        phase: Phase,
        status: PhaseStatus,
        *,
        cached: bool = False,
        detail: dict[str, Any] | None = None,
    ) -> PhaseRun:
        """Record how a phase ended (recording its start too when it was never started).

        Args:
            run_id: The run.
            phase: The phase.
            status: How it ended.
            cached: Whether its result came from Prefect's cache.
            detail: What to keep about it (shown by the API).
        """
        row = self._phase_row(run_id, phase)
        if row is None:
            row = self.start_phase(run_id, phase)
        return self.update(row, status=status, cached=cached, ended_at=utcnow(), detail=detail or {})

    def phases(self, run_id: str) -> Sequence[PhaseRun]:
        """The phases of a run, in pipeline order."""
        with self.session() as s:
            rows = s.exec(select(PhaseRun).where(PhaseRun.run_id == run_id)).all()
        order = {p: i for i, p in enumerate(Phase)}
        return sorted(rows, key=lambda r: order[r.phase])

    # --- budgets ------------------------------------------------------------------------------------
    def tenant_tokens_since(self, tenant_id: str, since: datetime) -> int:
        """Tokens (prompt and completion) spent by a tenant's runs created at or after ``since``."""
        stmt = select(func.coalesce(func.sum(_TOKENS), 0)).where(
            Run.tenant_id == tenant_id, col(Run.created_at) >= since
        )
        with self.session() as s:
            return int(s.exec(stmt).one())

    def tenant_runs_since(self, tenant_id: str, since: datetime, *, exclude_run: str | None = None) -> int:
        """How many runs a tenant created at or after ``since`` (not counting ``exclude_run``)."""
        stmt = select(func.count()).select_from(Run).where(Run.tenant_id == tenant_id, col(Run.created_at) >= since)
        if exclude_run:
            stmt = stmt.where(Run.id != exclude_run)
        with self.session() as s:
            return int(s.exec(stmt).one())

    def project_tokens(self, project_id: str) -> int:
        """Tokens (prompt and completion) spent by all runs of a project."""
        stmt = select(func.coalesce(func.sum(_TOKENS), 0)).where(Run.project_id == project_id)
        with self.session() as s:
            return int(s.exec(stmt).one())

    # --- metrics ------------------------------------------------------------------------------------
    def count_runs_by_status(self) -> dict[str, int]:
        """Number of runs in each status (all tenants), for metrics."""
        with self.session() as s:
            rows = s.exec(select(Run.status, func.count()).group_by(Run.status)).all()
        return {str(status): int(n) for status, n in rows}

    def phase_durations(self) -> dict[str, tuple[int, float]]:
        """Per phase: how many finished phase rows and their total seconds (all tenants), for metrics."""
        with self.session() as s:
            rows = s.exec(select(PhaseRun).where(col(PhaseRun.ended_at).is_not(None))).all()
        out: dict[str, tuple[int, float]] = {}
        for row in rows:
            assert row.ended_at is not None
            n, total = out.get(str(row.phase), (0, 0.0))
            out[str(row.phase)] = (n + 1, total + (row.ended_at - row.started_at).total_seconds())
        return out

    def runs_by_target(self, statuses: Collection[RunStatus]) -> list[TargetOutcome]:
        """Runs in ``statuses`` (all tenants) counted by target, for metrics.

        Grouped by the project's target reference, the type slug of the tenant's Block binding of that name
        (None when the reference names no binding: a built-in target, or a Block since removed) and status.
        """
        binding = and_(
            col(BlockBinding.tenant_id) == col(Project.tenant_id), col(BlockBinding.name) == col(Project.target_ref)
        )
        stmt = (
            select(Project.target_ref, BlockBinding.slug, Run.status, func.count())
            .select_from(Run)
            .join(Project, col(Run.project_id) == col(Project.id))
            .join(BlockBinding, binding, isouter=True)
            .where(col(Run.status).in_(list(statuses)))
            .group_by(col(Project.target_ref), col(BlockBinding.slug), col(Run.status))
        )
        with self.session() as s:
            rows = s.exec(stmt).all()
        return [TargetOutcome(ref, slug, RunStatus(status), int(n)) for ref, slug, status, n in rows]
