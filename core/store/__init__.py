"""The state store: SQLModel on SQLite (WAL, foreign keys) or PostgreSQL, with optimistic concurrency.

Schema management: a documented ``create_all`` plus a schema-version row. We chose this over Alembic
for now because the schema has one version and every install creates it fresh; the version row makes a
future mismatch a clear error (``state.schema``) instead of a silent corruption, and the day a second
version exists an Alembic migration starts from this one.

Every update goes through :meth:`Store.update`, which issues ``UPDATE … WHERE id = ? AND version = ?``;
when no row matches, the caller lost a race and gets :class:`~core.errors.ConcurrentUpdate`.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar

from sqlalchemy import bindparam, event, func, insert, inspect, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, SQLModel, col, create_engine, select

from core.errors import ConcurrentUpdate, KeyNotLive, NotFound, SchemaMismatch, StateError
from core.models import (
    SCHEMA_VERSION,
    TERMINAL,
    ApiKey,
    BlockBinding,
    IdempotencyRecord,
    Phase,
    PhaseRun,
    PhaseStatus,
    Project,
    Run,
    RunKind,
    RunStatus,
    SchemaInfo,
    Tenant,
    Version,
    build_row,
    check_transition,
    utcnow,
)
from core.store.prepared import PreparedSet

T = TypeVar("T", bound=SQLModel)


KEY_NOT_LIVE = "API key is unknown or revoked; create a new one with 'pombolt keys create'"
SAFETY_NET_PAGES = 10_000  # WAL pages after which a process that checkpoints in the background still does it inline
log = logging.getLogger("pombolt.store")


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, ``synchronous=NORMAL``, foreign keys and a busy timeout.

    ``synchronous=NORMAL`` under WAL (SQLite's recommendation for WAL, and what Prefect's own SQLite server
    uses) syncs the log at checkpoints instead of at every commit. The database cannot be corrupted by it and
    a crash of the process loses nothing committed; only a power loss or OS crash may roll back the last
    commits before the next checkpoint. The fsync it saves grows with the pages a transaction touches, and
    a submission touches about ten (a project, a run and their indexes), so ``FULL`` cost every
    ``POST /api/requirements`` several ms of disk wait on a busy machine. Installs that need every
    accepted request on disk before the answer run the state store on PostgreSQL.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def hash_key(key: str) -> str:
    """SHA-256 hex of an API key (only this is stored)."""
    return hashlib.sha256(key.encode()).hexdigest()


def _values(row: SQLModel) -> dict[str, Any]:
    """A model's column values, for a Core ``INSERT`` (the ORM unit of work is slower on the request path)."""
    return {c.name: getattr(row, c.name) for c in row.__table__.columns}  # type: ignore[attr-defined]


# Statements of the request path, built once (their compiled forms are cached by SQLAlchemy).
_TENANT_FOR_KEY = (
    select(Tenant)
    .join(ApiKey, col(ApiKey.tenant_id) == col(Tenant.id))
    .where(col(ApiKey.key_hash) == bindparam("key_hash"), col(ApiKey.revoked_at).is_(None))
)
_KEY_OWNER = select(ApiKey.tenant_id).where(
    col(ApiKey.key_hash) == bindparam("key_hash"), col(ApiKey.revoked_at).is_(None)
)
_RECORD_BY_KEY = select(IdempotencyRecord).where(
    col(IdempotencyRecord.tenant_id) == bindparam("tenant_id"), col(IdempotencyRecord.key) == bindparam("key")
)
_PROJECT_BY_NAME = select(Project).where(
    col(Project.tenant_id) == bindparam("tenant_id"), col(Project.name) == bindparam("name")
)


class RunClaim:
    """A queued run claimed by a dispatcher, inside the transaction that holds its lock."""

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


class Store:
    """All reads and writes of Pom-Bolt's state.

    Args:
        url: SQLAlchemy database URL.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        # SQLite takes one writer at a time. Threads of this process that collide on its lock sleep in
        # SQLite's busy handler (1, 2, 5 ... 100 ms steps) and wake late; queueing them on a Python lock
        # instead hands the database to the next writer as soon as the previous commit ends. Other
        # processes still wait through busy_timeout. PostgreSQL needs no such lock.
        self._write_lock: AbstractContextManager[object] = (
            threading.Lock() if self.engine.dialect.name == "sqlite" else nullcontext()
        )
        # the statements of POST /api/requirements, run on the DBAPI cursor (see core.store.prepared), whose
        # constraint violations therefore arrive as the driver's own IntegrityError
        self._hot = PreparedSet(self.engine.dialect)
        self._integrity_errors: type[Exception] = self.engine.dialect.loaded_dbapi.IntegrityError
        self._late_checkpoints = False  # see checkpoint_in_background

    # --- SQLite checkpoints ------------------------------------------------------------------------
    def checkpoint_in_background(self, interval: float = 1.0) -> Callable[[], None]:
        """Move SQLite's WAL checkpoints off the request path of this process (the API calls this).

        By default the commit that grows the WAL past 1,000 pages copies them into the database and syncs
        it, inside that request: with a submission touching about ten pages, one request in a hundred
        paid several ms for it (the p99 of ``POST /api/requirements``). Here this process's connections
        checkpoint on their own only past 10,000 pages (a safety net) and a daemon thread runs a PASSIVE
        checkpoint (never blocks readers or writers) every ``interval`` seconds instead. Other processes
        keep SQLite's default. A no-op on PostgreSQL.

        Returns:
            A function that stops the thread (and waits for it).
        """
        if self.engine.dialect.name != "sqlite":
            return lambda: None

        if not self._late_checkpoints:  # once per engine, however many apps start and stop on this store
            self._late_checkpoints = True

            @event.listens_for(self.engine, "connect")
            def _late_checkpoints(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.execute(f"PRAGMA wal_autocheckpoint={SAFETY_NET_PAGES}")

            self.engine.dispose()  # pooled connections reconnect with the setting
        stop = threading.Event()

        def checkpoint() -> None:
            while not stop.wait(interval):
                try:
                    with self.engine.connect() as conn:
                        conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
                except Exception:  # a busy or closing database: the next round (or the safety net) catches up
                    log.warning("background WAL checkpoint failed; retrying in %.1fs", interval, exc_info=True)

        thread = threading.Thread(target=checkpoint, name="pombolt-wal-checkpoint", daemon=True)
        thread.start()

        def halt() -> None:
            stop.set()
            thread.join(timeout=10)

        return halt

    # --- schema ----------------------------------------------------------------------------------
    def init(self) -> None:
        """Create missing tables and check the schema version.

        Raises:
            SchemaMismatch: When the database was made by another version of Pom-Bolt.
        """
        try:
            SQLModel.metadata.create_all(self.engine)
            self._add_missing_columns()
        except OperationalError as exc:
            raise StateError(f"cannot create the state store at {self.safe_url}: {exc.orig}") from exc
        with self.session() as s:
            info = s.get(SchemaInfo, 1)
            if info is None:
                try:
                    s.add(SchemaInfo(id=1, version=SCHEMA_VERSION))
                    s.commit()
                except IntegrityError:
                    s.rollback()
                    info = s.get(SchemaInfo, 1)
            if info is not None and info.version != SCHEMA_VERSION:
                raise SchemaMismatch(
                    f"database schema is version {info.version}, this Pom-Bolt needs {SCHEMA_VERSION}; "
                    "point POMBOLT_DATABASE_URL at a new database or upgrade Pom-Bolt"
                )

    def _add_missing_columns(self) -> None:
        """Additive migration: add nullable columns a newer Pom-Bolt defines and an older database lacks.

        Anything else (a new NOT NULL column, a changed type) needs a new ``SCHEMA_VERSION`` and a real
        migration; this refuses instead of guessing.
        """
        inspector = inspect(self.engine)
        for table in SQLModel.metadata.sorted_tables:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                if not column.nullable:
                    raise SchemaMismatch(
                        f"table {table.name} lacks the required column {column.name}; point "
                        "POMBOLT_DATABASE_URL at a new database or migrate this one"
                    )
                kind = column.type.compile(dialect=self.engine.dialect)
                with self.engine.begin() as conn:
                    conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))

    @property
    def safe_url(self) -> str:
        """The database URL without its password."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose objects stay readable after commit."""
        with Session(self.engine, expire_on_commit=False) as s:
            yield s

    # --- generic optimistic update ----------------------------------------------------------------
    def update(self, row: T, **changes: Any) -> T:
        """Apply ``changes`` to ``row`` if nobody changed it since it was read.

        Returns:
            A fresh copy of the row with the changes and the next version.

        Raises:
            ConcurrentUpdate: When the row's version moved on (nothing is written).
        """
        cls = type(row)
        row_id = row.id  # type: ignore[attr-defined]
        current = row.version  # type: ignore[attr-defined]
        if "updated_at" in cls.model_fields:
            changes.setdefault("updated_at", utcnow())
        stmt = (
            update(cls)
            .where(col(cls.id) == row_id)  # type: ignore[attr-defined]
            .where(col(cls.version) == current)  # type: ignore[attr-defined]
            .values(**changes, version=current + 1)
        )
        with self.session() as s:
            result = s.exec(stmt)
            s.commit()
            if result.rowcount != 1:
                raise ConcurrentUpdate(
                    f"{cls.__name__} {row_id} was changed by someone else (expected version {current}); "
                    "reload it and try again"
                )
            fresh = s.get(cls, row_id)
            assert fresh is not None
            return fresh

    # --- tenants and keys -------------------------------------------------------------------------
    def ensure_tenant(self, tenant_id: str, name: str | None = None) -> Tenant:
        """Return the tenant, creating it when absent."""
        with self.session() as s:
            tenant = s.get(Tenant, tenant_id)
            if tenant is None:
                tenant = Tenant(id=tenant_id, name=name or tenant_id)
                s.add(tenant)
                try:
                    s.commit()
                except IntegrityError:
                    s.rollback()
                    tenant = s.get(Tenant, tenant_id)
                    assert tenant is not None
            return tenant

    def create_api_key(self, tenant_id: str) -> tuple[ApiKey, str]:
        """Create a key for a tenant; the plain key is returned once and never stored."""
        self.ensure_tenant(tenant_id)
        plain = "pb_" + secrets.token_urlsafe(32)
        row = ApiKey(tenant_id=tenant_id, key_hash=hash_key(plain), prefix=plain[:10])
        with self.session() as s:
            s.add(row)
            s.commit()
        return row, plain

    def tenant_for_key(self, plain: str) -> Tenant | None:
        """Return the tenant owning an unrevoked key, or None.

        One indexed query (key hash joined to its tenant) on a plain connection per call, read from the
        database every time, so a key revoked by another process (``pombolt keys revoke``) stops working at
        its next request. It runs on every API request, hence Core instead of an ORM session.
        """
        with self.engine.connect() as conn:
            row = conn.execute(_TENANT_FOR_KEY, {"key_hash": hash_key(plain)}).first()
        return None if row is None else build_row(Tenant, **row._mapping)

    def revoke_api_key(self, prefix_or_id: str) -> ApiKey:
        """Revoke a key by id or printed prefix."""
        with self.session() as s:
            key = s.exec(select(ApiKey).where((ApiKey.id == prefix_or_id) | (ApiKey.prefix == prefix_or_id))).first()
        if key is None:
            raise NotFound(f"no API key {prefix_or_id!r}; list keys with 'pombolt keys list'")
        return self.update(key, revoked_at=utcnow())

    # --- blocks -------------------------------------------------------------------------------------
    def bind_block(self, tenant_id: str, name: str, slug: str, document_name: str) -> BlockBinding:
        """Record (or replace) that a tenant owns a Block document under ``name``."""
        with self.session() as s:
            row = s.exec(
                select(BlockBinding).where(BlockBinding.tenant_id == tenant_id, BlockBinding.name == name)
            ).first()
            if row is None:
                row = BlockBinding(tenant_id=tenant_id, name=name, slug=slug, document_name=document_name)
                s.add(row)
                s.commit()
                return row
        return self.update(row, slug=slug, document_name=document_name)

    def find_block(self, tenant_id: str, name: str) -> BlockBinding | None:
        """Return the tenant's Block binding named ``name``, or None."""
        with self.session() as s:
            return s.exec(
                select(BlockBinding).where(BlockBinding.tenant_id == tenant_id, BlockBinding.name == name)
            ).first()

    def list_blocks(self, tenant_id: str) -> Sequence[BlockBinding]:
        """All Block bindings of a tenant."""
        with self.session() as s:
            return s.exec(
                select(BlockBinding).where(BlockBinding.tenant_id == tenant_id).order_by(BlockBinding.name)
            ).all()

    # --- projects -----------------------------------------------------------------------------------
    def create_project(self, project: Project) -> Project:
        """Insert a new project."""
        with self.session() as s:
            s.add(project)
            s.commit()
        return project

    def get_project(self, project_id: str, tenant_id: str | None = None) -> Project:
        """Return a project (of the tenant, when given).

        Raises:
            NotFound: When absent or owned by another tenant.
        """
        with self.session() as s:
            row = s.get(Project, project_id)
        if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
            raise NotFound(f"no project {project_id!r}; list projects with 'pombolt status'")
        return row

    def find_project(self, tenant_id: str, name: str) -> Project | None:
        """Return the tenant's project called ``name``, or None."""
        with self.session() as s:
            return s.exec(select(Project).where(Project.tenant_id == tenant_id, Project.name == name)).first()

    def list_projects(self, tenant_id: str, *, offset: int = 0, limit: int = 50) -> Sequence[Project]:
        """A page of a tenant's projects, newest first."""
        with self.session() as s:
            return s.exec(
                select(Project)
                .where(Project.tenant_id == tenant_id)
                .order_by(col(Project.created_at).desc())
                .offset(offset)
                .limit(limit)
            ).all()

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
        """Insert a queued run for a project."""
        run = Run(
            tenant_id=project.tenant_id,
            project_id=project.id,
            kind=kind,
            requirements=requirements,
            parent_run_id=parent_run_id,
        )
        if request_id:
            run.request_id = request_id
        with self.session() as s:
            s.add(run)
            s.commit()
        return run

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

    def transition(self, run: Run, status: RunStatus, **changes: Any) -> Run:
        """Move a run to ``status`` (checked by the state machine) with optimistic concurrency.

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

    def reload(self, row: T) -> T:
        """Read a row again."""
        with self.session() as s:
            fresh = s.get(type(row), row.id)  # type: ignore[attr-defined]
        if fresh is None:
            raise NotFound(f"{type(row).__name__} {row.id} no longer exists")  # type: ignore[attr-defined]
        return fresh

    # --- phases -------------------------------------------------------------------------------------
    def start_phase(self, run_id: str, phase: Phase) -> PhaseRun:
        """Record that a phase started (restarting a row left by an earlier attempt)."""
        with self.session() as s:
            row = s.exec(select(PhaseRun).where(PhaseRun.run_id == run_id, PhaseRun.phase == phase)).first()
        if row is None:
            row = PhaseRun(run_id=run_id, phase=phase)
            with self.session() as s:
                s.add(row)
                s.commit()
            return row
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
        """Record how a phase ended."""
        with self.session() as s:
            row = s.exec(select(PhaseRun).where(PhaseRun.run_id == run_id, PhaseRun.phase == phase)).first()
        if row is None:
            row = self.start_phase(run_id, phase)
        return self.update(row, status=status, cached=cached, ended_at=utcnow(), detail=detail or {})

    def phases(self, run_id: str) -> Sequence[PhaseRun]:
        """The phases of a run, in pipeline order."""
        with self.session() as s:
            rows = s.exec(select(PhaseRun).where(PhaseRun.run_id == run_id)).all()
        order = {p: i for i, p in enumerate(Phase)}
        return sorted(rows, key=lambda r: order[r.phase])

    # --- versions -----------------------------------------------------------------------------------
    def add_version(self, run: Run) -> Version:
        """Write the next version of the run's project from a verified run."""
        assert run.snapshot_id and run.site_snapshot_id and run.live_url
        for _attempt in range(3):  # a concurrent writer may take the same number; bounded
            with self.session() as s:
                top = s.exec(select(func.max(Version.number)).where(Version.project_id == run.project_id)).one()
                row = Version(
                    tenant_id=run.tenant_id,
                    project_id=run.project_id,
                    run_id=run.id,
                    number=(top or 0) + 1,
                    snapshot_id=run.snapshot_id,
                    site_snapshot_id=run.site_snapshot_id,
                    commit_sha=run.commit_sha,
                    deploy_id=run.deploy_id,
                    live_url=run.live_url,
                )
                s.add(row)
                try:
                    s.commit()
                    return row
                except IntegrityError:
                    s.rollback()
        raise ConcurrentUpdate(f"could not number a new version of project {run.project_id}; retry the run")

    def versions(self, project_id: str) -> Sequence[Version]:
        """All versions of a project, oldest first."""
        with self.session() as s:
            return s.exec(select(Version).where(Version.project_id == project_id).order_by(col(Version.number))).all()

    # --- idempotency --------------------------------------------------------------------------------
    def find_idempotency(self, tenant_id: str, key: str) -> IdempotencyRecord | None:
        """Return the record for a tenant's idempotency key, or None."""
        with self.session() as s:
            return s.exec(
                select(IdempotencyRecord).where(IdempotencyRecord.tenant_id == tenant_id, IdempotencyRecord.key == key)
            ).first()

    def check_key_live(self, tenant_id: str, api_key_hash: str) -> None:
        """Check that an API key (by hash) is live and ``tenant_id``'s, reading the database.

        Raises:
            KeyNotLive: The key is unknown, revoked, or another tenant's.
        """
        with self.engine.connect() as conn:
            self._check_key(conn, tenant_id, api_key_hash)

    def _check_key(self, conn: Connection, tenant_id: str, api_key_hash: str) -> None:
        owner = self._hot.get("key_owner", lambda: _KEY_OWNER).first(conn, {"key_hash": api_key_hash})
        if owner is None or owner["tenant_id"] != tenant_id:
            raise KeyNotLive(KEY_NOT_LIVE)

    def submission_lookup(
        self, tenant_id: str, key: str | None, name: str | None, *, api_key_hash: str | None = None
    ) -> tuple[IdempotencyRecord | None, Project | None]:
        """On one connection: the tenant's record for ``key`` and, when none, its project called ``name``.

        The submission path runs on every ``POST /api/requirements``, hence prepared statements
        (:mod:`core.store.prepared`) instead of an ORM session.

        Args:
            tenant_id: The submitting tenant.
            key: The tenant's ``Idempotency-Key``, if any.
            name: The project name, if valid.
            api_key_hash: When given, first check on the same connection that this API key is live and the
                tenant's (the API's submission path authenticates here instead of in a query of its own).

        Raises:
            KeyNotLive: ``api_key_hash`` is unknown, revoked, or another tenant's.
        """
        record = project = None
        hot = self._hot
        with self.engine.connect() as conn:
            if api_key_hash is not None:
                self._check_key(conn, tenant_id, api_key_hash)
            if key is not None:
                row = hot.get("record_by_key", lambda: _RECORD_BY_KEY).first(conn, {"tenant_id": tenant_id, "key": key})
                record = None if row is None else build_row(IdempotencyRecord, **row)
            if record is None and name is not None:
                values = {"tenant_id": tenant_id, "name": name}
                found = hot.get("project_by_name", lambda: _PROJECT_BY_NAME).first(conn, values)
                project = None if found is None else build_row(Project, **found)
        return record, project

    def add_submission(
        self,
        project: Project | None,
        run: Run,
        record: IdempotencyRecord | None,
        *,
        changed: tuple[Project, dict[str, Any]] | None = None,
    ) -> bool:
        """Write a submission in ONE transaction: a new project (or an optimistic update of an existing one),
        a queued run and its idempotency record.

        Args:
            project: A new project to insert, or None when the run belongs to an existing one.
            run: The queued run.
            record: The idempotency record, when the request carried a key.
            changed: ``(existing project, changes)`` applied with the version check in the same transaction
                (``changes`` carries ``updated_at`` when wanted).

        Returns:
            True when written; False when the tenant's idempotency key was taken first by someone else
            (nothing is written then).

        Raises:
            ConcurrentUpdate: When another writer created a project of the same name at the same time, or
                changed the existing project since it was read (nothing is written then).
        """
        try:
            with self._write_lock, self.engine.begin() as conn:  # commits at the end, rolls back on error
                if changed is not None:
                    existing, changes = changed
                    result = conn.execute(
                        update(Project)
                        .where(col(Project.id) == existing.id, col(Project.version) == existing.version)
                        .values(**changes, version=existing.version + 1)
                    )
                    if result.rowcount != 1:
                        raise ConcurrentUpdate(
                            f"Project {existing.id} was changed by someone else (expected version "
                            f"{existing.version}); send the request again"
                        )
                hot = self._hot
                if project is not None:
                    hot.get("insert_project", lambda: insert(Project)).execute(conn, _values(project))
                hot.get("insert_run", lambda: insert(Run)).execute(conn, _values(run))
                if record is not None:
                    hot.get("insert_record", lambda: insert(IdempotencyRecord)).execute(conn, _values(record))
        except (IntegrityError, self._integrity_errors) as exc:
            if record is not None and self.find_idempotency(record.tenant_id, record.key) is not None:
                return False
            raise ConcurrentUpdate(
                "another request created the same project at the same time; send the request again"
            ) from exc
        return True

    @contextmanager
    def claim_queued_run(self, skip: Collection[str] = ()) -> Iterator[RunClaim | None]:
        """Claim the oldest run waiting in the outbox (queued, not yet handed to Prefect), or None.

        On PostgreSQL the row is read ``FOR UPDATE SKIP LOCKED`` and stays locked until the block ends, so
        concurrent dispatchers never claim the same run; mark it with :meth:`RunClaim.mark_dispatched`,
        which writes in the same transaction. On SQLite the optimistic version check does the same job.
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

    def list_projects_with_status(
        self, tenant_id: str, *, status: RunStatus | None, offset: int = 0, limit: int = 50
    ) -> Sequence[Project]:
        """A page of a tenant's projects, newest first, optionally only those whose latest run has ``status``."""
        if status is None:
            return self.list_projects(tenant_id, offset=offset, limit=limit)
        latest = (
            select(Run.project_id, func.max(Run.created_at).label("latest"))
            .where(Run.tenant_id == tenant_id)
            .group_by(Run.project_id)
            .subquery()
        )
        stmt = (
            select(Project)
            .join(latest, col(Project.id) == latest.c.project_id)
            .join(Run, (col(Run.project_id) == latest.c.project_id) & (col(Run.created_at) == latest.c.latest))
            .where(Project.tenant_id == tenant_id, Run.status == status)
            .order_by(col(Project.created_at).desc())
            .offset(offset)
            .limit(limit)
        )
        with self.session() as s:
            return s.exec(stmt).all()

    def ping(self) -> None:
        """Run one trivial query (raises when the database is unreachable)."""
        with self.session() as s:
            s.exec(select(1)).one()
