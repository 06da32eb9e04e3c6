"""The store's engine: SQLModel on SQLite (WAL, foreign keys) or PostgreSQL, with optimistic concurrency.

Covers no table of its own but all of them at once: it creates the engine (SQLite pragmas, the background WAL
checkpoint thread), creates the schema and checks the ``schemainfo`` version row, and holds what every group of
tables shares: sessions, plain inserts, the optimistic :meth:`StoreEngine.update`, :meth:`StoreEngine.reload`
and a ping.

Schema management: a documented ``create_all`` plus a schema-version row. We chose this over Alembic
for now because the schema has one version and every install creates it fresh; the version row makes a
future mismatch a clear error (``state.schema``) instead of a silent corruption, and the day a second
version exists an Alembic migration starts from this one. A newer Pom-Bolt may add nullable columns to an
existing table; :meth:`StoreEngine.init` adds them to an older database (anything else is refused).

Every update goes through :meth:`StoreEngine.update`, which issues ``UPDATE … WHERE id = ? AND version = ?``;
when no row matches, the caller lost a race and gets :class:`~core.errors.ConcurrentUpdate`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar

from sqlalchemy import event, inspect, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, SQLModel, col, create_engine, select

from core.errors import ConcurrentUpdate, NotFound, SchemaMismatch, StateError
from core.models import SCHEMA_VERSION, SchemaInfo, utcnow

T = TypeVar("T", bound=SQLModel)

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

    Args:
        url: SQLAlchemy database URL.

    Returns:
        The engine (SQLite connections are shared across threads; PostgreSQL pings pooled connections).
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


class StoreEngine:
    """The engine, schema and generic row operations every group of tables builds on.

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

        Args:
            interval: Seconds between two checkpoints.

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
        thread = threading.Thread(
            target=self._checkpoint_until, args=(stop, interval), name="pombolt-wal-checkpoint", daemon=True
        )
        thread.start()

        def halt() -> None:
            stop.set()
            thread.join(timeout=10)

        return halt

    def _checkpoint_until(self, stop: threading.Event, interval: float) -> None:
        """The checkpoint thread: a PASSIVE checkpoint every ``interval`` seconds until ``stop`` is set."""
        while not stop.wait(interval):
            try:
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except Exception:  # a busy or closing database: the next round (or the safety net) catches up
                log.warning("background WAL checkpoint failed; retrying in %.1fs", interval, exc_info=True)

    # --- schema ----------------------------------------------------------------------------------
    def init(self) -> None:
        """Create missing tables (and missing nullable columns) and check the schema version.

        Raises:
            StateError: When the database cannot be created or reached.
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
        """A session whose objects stay readable after commit (for the store's own methods and tests)."""
        with Session(self.engine, expire_on_commit=False) as s:
            yield s

    def ping(self) -> None:
        """Run one trivial query (raises when the database is unreachable)."""
        with self.session() as s:
            s.exec(select(1)).one()

    # --- generic row operations -------------------------------------------------------------------
    def _insert(self, row: T) -> T:
        """Insert a new row and return it (still readable after the commit)."""
        with self.session() as s:
            s.add(row)
            s.commit()
        return row

    def update(self, row: T, **changes: Any) -> T:
        """Apply ``changes`` to ``row`` if nobody changed it since it was read.

        Args:
            row: The row as it was read (its ``version`` is checked).
            **changes: Column values to set; ``updated_at`` is set too when the table has it.

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

    def reload(self, row: T) -> T:
        """Read a row again.

        Raises:
            NotFound: When the row no longer exists.
        """
        with self.session() as s:
            fresh = s.get(type(row), row.id)  # type: ignore[attr-defined]
        if fresh is None:
            raise NotFound(f"{type(row).__name__} {row.id} no longer exists")  # type: ignore[attr-defined]
        return fresh
