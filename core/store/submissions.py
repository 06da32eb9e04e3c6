"""The API's hot path, ``POST /api/requirements``: table ``idempotencyrecord``, plus the reads and writes of a
submission on ``apikey``, ``project`` and ``run``.

A submission checks that its API key is still live, finds the tenant's idempotency record (or else its
project of that name) on one connection, then writes the project, the queued run and the record in one
transaction. These statements run on every request, so they are compiled once per engine and run on the
DBAPI cursor (:mod:`core.store.prepared`) instead of through an ORM session.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, col, select

from core.errors import ConcurrentUpdate, KeyNotLive
from core.models import ApiKey, IdempotencyRecord, Project, Run, build_row
from core.store.engine import StoreEngine
from core.store.prepared import PreparedSet

KEY_NOT_LIVE = "API key is unknown or revoked; create a new one with 'pombolt keys create'"

# Statements of the request path, built once (and compiled once per engine by PreparedSet).
_KEY_OWNER = select(ApiKey.tenant_id).where(
    col(ApiKey.key_hash) == bindparam("key_hash"), col(ApiKey.revoked_at).is_(None)
)
_RECORD_BY_KEY = select(IdempotencyRecord).where(
    col(IdempotencyRecord.tenant_id) == bindparam("tenant_id"), col(IdempotencyRecord.key) == bindparam("key")
)
_PROJECT_BY_NAME = select(Project).where(
    col(Project.tenant_id) == bindparam("tenant_id"), col(Project.name) == bindparam("name")
)


def _values(row: SQLModel) -> dict[str, Any]:
    """A model's column values, for a Core ``INSERT`` (the ORM unit of work is slower on the request path)."""
    return {c.name: getattr(row, c.name) for c in row.__table__.columns}  # type: ignore[attr-defined]


class SubmissionStore(StoreEngine):
    """Idempotency records and the submission path (key check, lookup and one-transaction write).

    Args:
        url: SQLAlchemy database URL.
    """

    def __init__(self, url: str) -> None:
        super().__init__(url)
        # the statements of POST /api/requirements, run on the DBAPI cursor (see core.store.prepared), whose
        # constraint violations therefore arrive as the driver's own IntegrityError
        self._hot = PreparedSet(self.engine.dialect)
        self._integrity_errors: type[Exception] = self.engine.dialect.loaded_dbapi.IntegrityError

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

        Returns:
            The idempotency record (or None) and, when there is no record, the project (or None).

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
        """Write a submission in ONE transaction: its project, its queued run and its idempotency record.

        The project is either new (inserted) or an existing one (updated with the version check).

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
                    self._change_project(conn, *changed)
                self._insert_submission(conn, project, run, record)
        except (IntegrityError, self._integrity_errors) as exc:
            if record is not None and self.find_idempotency(record.tenant_id, record.key) is not None:
                return False
            raise ConcurrentUpdate(
                "another request created the same project at the same time; send the request again"
            ) from exc
        return True

    @staticmethod
    def _change_project(conn: Connection, existing: Project, changes: dict[str, Any]) -> None:
        """Apply ``changes`` to ``existing`` in ``conn``'s transaction if its version is unchanged."""
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

    def _insert_submission(
        self, conn: Connection, project: Project | None, run: Run, record: IdempotencyRecord | None
    ) -> None:
        """Insert the new project (if any), the run and the record (if any) in ``conn``'s transaction."""
        hot = self._hot
        if project is not None:
            hot.get("insert_project", lambda: insert(Project)).execute(conn, _values(project))
        hot.get("insert_run", lambda: insert(Run)).execute(conn, _values(run))
        if record is not None:
            hot.get("insert_record", lambda: insert(IdempotencyRecord)).execute(conn, _values(record))
