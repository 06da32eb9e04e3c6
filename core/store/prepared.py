"""Core statements compiled once and run on the DBAPI cursor, for the API's hot path.

SQLAlchemy's execution layer (execution context, result objects, events) costs 60-150 us of Python per
statement on a busy API process, more than SQLite itself; ``POST /api/requirements`` runs four or five
statements. :class:`Prepared` keeps what makes SQLAlchemy correct across databases (the statement is
compiled by the engine's own dialect, values go through the column types' own bind and result processors,
so a row reads back exactly as if SQLAlchemy had written it) and drops the rest: the statement runs on the
pooled connection's DBAPI cursor, inside the transaction SQLAlchemy opened and commits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement, Insert, Select

Processor = Callable[[Any], Any] | None


class Prepared:
    """One Core statement compiled for one dialect.

    Args:
        statement: A ``select`` whose parameters are named ``bindparam`` s, or a plain ``insert(Model)``
            (its parameters are all the table's columns, by column name).
        dialect: The engine's dialect (``engine.dialect``).
    """

    def __init__(self, statement: Select[Any] | Insert, dialect: Dialect) -> None:
        column_keys = [c.key for c in statement.table.columns] if isinstance(statement, Insert) else None
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        self.sql = compiled.string
        self.positional = bool(compiled.positional)
        self.order: Sequence[str] = list(compiled.positiontup or ())
        self.binds: dict[str, Processor] = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect) for name, bind in compiled.binds.items()
        }
        self.columns: list[tuple[str, Processor]] = []
        if isinstance(statement, ClauseElement) and isinstance(statement, Select):
            for column in statement.selected_columns:
                impl = column.type.dialect_impl(dialect)
                self.columns.append((str(column.key), impl.result_processor(dialect, None)))

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        """The DBAPI parameters for ``values`` (keyed by bind name), converted by the column types.

        Raises:
            KeyError: A parameter of the statement is missing from ``values``.
        """
        converted = {
            name: (process(values[name]) if process is not None else values[name])
            for name, process in self.binds.items()
        }
        return [converted[name] for name in self.order] if self.positional else converted

    def execute(self, conn: Connection, values: Mapping[str, Any]) -> int:
        """Run the statement on ``conn``'s DBAPI connection (in its transaction); return the row count."""
        cursor = conn.connection.cursor()
        try:
            cursor.execute(self.sql, self.parameters(values))
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def first(self, conn: Connection, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """Run a ``select`` on ``conn``; return its first row as ``{column key: value}``, or None."""
        cursor = conn.connection.cursor()
        try:
            cursor.execute(self.sql, self.parameters(values))
            row = cursor.fetchone()
        finally:
            cursor.close()
        if row is None:
            return None
        return {
            key: (process(v) if process is not None else v) for (key, process), v in zip(self.columns, row, strict=True)
        }


class PreparedSet:
    """Statements compiled lazily, once each, for one engine's dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._cache: dict[str, Prepared] = {}

    def get(self, name: str, build: Callable[[], Select[Any] | Insert]) -> Prepared:
        """The statement called ``name``, compiled on first use from ``build()``."""
        prepared = self._cache.get(name)
        if prepared is None:
            prepared = self._cache[name] = Prepared(build(), self.dialect)
        return prepared
