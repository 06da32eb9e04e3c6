"""What one pipeline run asks of the state store and of Prefect: SQL statements, project reads, Block loads.

One uncached run and one fully cached re-run of the same requirements go through the real pipeline on
embedded defaults (offline generator, local git, the local static site) on Prefect's temporary local server,
in a throwaway data dir, after one unmeasured warm-up run of another project (server start, first tenant,
first concurrency limit). Each run is measured in two parts: the submission (``usecases.submit``, what the
CLI and the API write before a flow starts) and the flow itself (``requirements_to_deployment(run_id)``,
called in this process as ``pombolt run`` does).

Counted, in this process only (measurement, nothing is replaced):

- SQL statements on the state store, two ways: SQLAlchemy's ``before_cursor_execute`` on every engine whose URL
  is the state store's (an ``executemany`` counts once), and SQLite's own trace of every statement it runs on
  the store's connections (``sqlite3.Connection.set_trace_callback``), which also sees what the store runs on
  the raw DBAPI cursor (``core.store.prepared``: the API's hot path, past SQLAlchemy's events) and the
  transaction statements; by verb and by table named after FROM/JOIN/INTO/UPDATE;
- SELECTs on the ``project`` table;
- ``Block.load``/``Block.aload`` calls (outermost only: a ``load`` that dispatches to ``aload`` counts once);
- HTTP requests to the Prefect API (``PrefectHttpx*Client.send``), all and those on Block documents/types.
  Log and event batches are flushed by background workers, so the total may move by a few between runs.

Usage, from the repo root::

    .venv/bin/python -m bench.queries_per_run
"""

from __future__ import annotations

import contextvars
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._common import cleanup, isolate, machine

ROOT = isolate("queries")

TABLE = re.compile(r'\b(?:FROM|JOIN|INTO|UPDATE)\s+["`]?(\w+)["`]?', re.IGNORECASE)
UUIDISH = re.compile(r"/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TRANSACTION = {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}
CACHED_PHASES = {"generate", "check", "store", "publish", "build"}


@dataclass
class Statements:
    """SQL statements seen one way: by verb and by table."""

    verbs: Counter[str] = field(default_factory=Counter)
    tables: Counter[str] = field(default_factory=Counter)  # table -> statements naming it
    project_selects: int = 0

    @property
    def queries(self) -> int:
        """Statements other than transaction control."""
        return sum(n for verb, n in self.verbs.items() if verb not in TRANSACTION)

    @property
    def transactions(self) -> int:
        return sum(n for verb, n in self.verbs.items() if verb in TRANSACTION)

    def add(self, statement: str, known: frozenset[str]) -> None:
        words = statement.split(None, 1)
        verb = words[0].upper() if words else "?"
        self.verbs[verb] += 1
        tables = {t.lower() for t in TABLE.findall(statement)} & known  # values inlined by the trace are skipped
        self.tables.update(tables)
        if verb == "SELECT" and "project" in tables:
            self.project_selects += 1


@dataclass
class Tally:
    """What one measured stretch did."""

    sqlite: Statements = field(default_factory=Statements)  # everything SQLite ran on the store
    sqlalchemy: Statements = field(default_factory=Statements)  # what went through SQLAlchemy's events
    block_loads: int = 0
    api_requests: Counter[str] = field(default_factory=Counter)  # "METHOD /route" -> count
    seconds: float = 0.0

    @property
    def block_api_requests(self) -> int:
        return sum(n for route, n in self.api_requests.items() if "/block_" in route)


class Meter:
    """Counts SQL on the state store, Block loads and Prefect API requests while :meth:`measure` is open.

    Install it before the state store makes its first connection, so SQLite traces every one.
    """

    def __init__(self, db_url: str) -> None:
        from sqlalchemy.engine import make_url
        from sqlmodel import SQLModel

        import core.models  # noqa: F401 - registers the tables

        self.url = make_url(db_url)
        self.known = frozenset(SQLModel.metadata.tables)
        self.tally: Tally | None = None
        self._lock = threading.Lock()
        self._in_load: contextvars.ContextVar[bool] = contextvars.ContextVar("in_block_load", default=False)

    # --- hooks --------------------------------------------------------------------------------------
    def install(self) -> None:
        """Attach the SQL listeners and the counting wrappers (this process only)."""
        from prefect.blocks.core import Block
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        event.listen(Engine, "before_cursor_execute", self._on_sql)
        if self.url.get_backend_name() == "sqlite":
            event.listen(Engine, "connect", self._on_connect)
        for name in ("load", "aload"):
            setattr(Block, name, classmethod(self._counting_load(Block.__dict__[name].__func__)))
        self._count_requests()

    def _count_requests(self) -> None:
        from prefect.client.base import PrefectHttpxAsyncClient, PrefectHttpxSyncClient

        sync_send = PrefectHttpxSyncClient.send
        async_send = PrefectHttpxAsyncClient.send

        def send(client: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            self._on_request(request)
            return sync_send(client, request, *args, **kwargs)

        async def asend(client: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            self._on_request(request)
            return await async_send(client, request, *args, **kwargs)

        setattr(PrefectHttpxSyncClient, "send", send)  # noqa: B010 - a counting wrapper, this process only
        setattr(PrefectHttpxAsyncClient, "send", asend)  # noqa: B010

    def _counting_load(self, original: Callable[..., Any]) -> Callable[..., Any]:
        meter = self

        def load(cls: type, *args: Any, **kwargs: Any) -> Any:
            if meter.tally is not None and not meter._in_load.get():
                meter.tally.block_loads += 1
            token = meter._in_load.set(True)
            try:
                return original(cls, *args, **kwargs)
            finally:
                meter._in_load.reset(token)

        return load

    def _on_connect(self, dbapi_conn: Any, record: Any) -> None:
        """Trace a new SQLite connection when it opens the state store's database file."""
        files = [row[2] for row in dbapi_conn.execute("PRAGMA database_list").fetchall()]
        if self.url.database and any(f and Path(f).resolve() == Path(self.url.database).resolve() for f in files):
            dbapi_conn.set_trace_callback(self._on_trace)

    def _on_trace(self, statement: str) -> None:
        with self._lock:
            if self.tally is not None:
                self.tally.sqlite.add(statement, self.known)

    def _on_sql(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if conn.engine.url != self.url:
            return
        with self._lock:
            if self.tally is not None:
                self.tally.sqlalchemy.add(statement, self.known)

    def _on_request(self, request: Any) -> None:
        with self._lock:
            if self.tally is not None:
                path = UUIDISH.sub("/{id}", request.url.path).removeprefix("/api")
                self.tally.api_requests[f"{request.method} {path}"] += 1

    @contextmanager
    def measure(self) -> Iterator[Tally]:
        """Count everything done inside the block."""
        tally = self.tally = Tally()
        started = time.perf_counter()
        try:
            yield tally
        finally:
            tally.seconds = time.perf_counter() - started
            self.tally = None


def one_run(
    meter: Meter, requirements: str, name: str, *, expect_cached: bool, refs: dict[str, str] | None = None
) -> tuple[Tally, Tally]:
    """Submit and run once; return the submission's and the flow's tallies (and check the run did what we say)."""
    from core.runtime import get_store
    from core.settings import get_settings
    from flows.pipeline import requirements_to_deployment
    from ops.cli.show import run_report
    from usecases.submit import Submission, submit

    settings = get_settings()
    store = get_store(settings)
    with meter.measure() as submitted:
        sub = Submission(requirements=requirements, name=name, **(refs or {}))
        _, run, _ = submit(store, settings.default_tenant, sub, settings)
    with meter.measure() as flowed:
        requirements_to_deployment(run.id)
    report = run_report(store, run.id)
    if report["status"] != "verified":
        raise RuntimeError(f"run {run.id} of {name} ended {report['status']}: {report['error']}")
    cached = {p["name"] for p in report["phases"] if p["cached"]}
    if expect_cached and not CACHED_PHASES <= cached:
        raise RuntimeError(f"re-run of {name} was not cached: {report['phases']}")
    if not expect_cached and cached - {"preflight"}:  # preflight is keyed on the Blocks alone, by design
        raise RuntimeError(f"first run of {name} hit the cache: {sorted(cached)}")
    return submitted, flowed


def print_table(columns: dict[str, Tally]) -> None:
    """Rows = what was counted, columns = the measured stretches."""
    verbs = sorted({v for t in columns.values() for v in t.sqlite.verbs if v not in TRANSACTION})
    tables = sorted({n for t in columns.values() for n in t.sqlite.tables})
    rows: list[tuple[str, Callable[[Tally], object]]] = [
        ("SQL statements (SQLite trace)", lambda t: t.sqlite.queries),
        *[(f"  {verb}", lambda t, v=verb: t.sqlite.verbs[v]) for verb in verbs],
        *[(f"  naming table {name}", lambda t, n=name: t.sqlite.tables[n]) for name in tables],
        ("  BEGIN/COMMIT/ROLLBACK", lambda t: t.sqlite.transactions),
        ("SELECTs on project", lambda t: t.sqlite.project_selects),
        ("SQL via SQLAlchemy events", lambda t: t.sqlalchemy.queries),
        ("  SELECTs on project", lambda t: t.sqlalchemy.project_selects),
        ("Block.load/aload calls", lambda t: t.block_loads),
        ("Prefect API requests", lambda t: sum(t.api_requests.values())),
        ("  on Block documents/types", lambda t: t.block_api_requests),
        ("seconds", lambda t: f"{t.seconds:.2f}"),
    ]
    width = max(len(label) for label, _ in rows) + 2
    print(f"{'':<{width}}" + "".join(f"{name:>17}" for name in columns))
    for label, value in rows:
        print(f"{label:<{width}}" + "".join(f"{value(t)!s:>17}" for t in columns.values()))


def print_routes(columns: dict[str, Tally]) -> None:
    """Prefect API requests by route, for the flow columns."""
    flows = {name: t for name, t in columns.items() if name.startswith("flow")}
    routes = sorted({r for t in flows.values() for r in t.api_requests})
    if not routes:
        return
    width = max(len(r) for r in routes) + 2
    print(f"\nPrefect API requests during the flow, by route\n{'':<{width}}" + "".join(f"{n:>17}" for n in flows))
    for route in routes:
        print(f"{route:<{width}}" + "".join(f"{t.api_requests[route]:>17}" for t in flows.values()))


def save_blocks() -> dict[str, str]:
    """Save the three default Blocks as the default tenant's own; return the Submission fields naming them."""
    from blocks.catalog import SHORTHANDS, save_block
    from core.runtime import get_store
    from core.settings import get_settings

    settings = get_settings()
    store = get_store(settings)
    store.ensure_tenant(settings.default_tenant)
    defaults = {"generator": "offline", "repository": "local-git", "target": "local-static"}
    refs: dict[str, str] = {}
    for kind, shorthand in defaults.items():
        block = SHORTHANDS[kind][shorthand]()  # type: ignore[index]
        save_block(store, settings.default_tenant, f"bench-{shorthand}", block)
        refs[kind] = f"bench-{shorthand}"
    return refs


def scenario(meter: Meter, title: str, refs: dict[str, str] | None = None) -> None:
    """An uncached run and its cached re-run of one new project; print their figures."""
    name = f"bench-{uuid.uuid4().hex[:6]}"
    requirements = f"a pomodoro timer with a task list (bench {name})"
    sub_cold, flow_cold = one_run(meter, requirements, name, expect_cached=False, refs=refs)
    sub_warm, flow_warm = one_run(meter, requirements, name, expect_cached=True, refs=refs)
    columns = {"submit uncached": sub_cold, "flow uncached": flow_cold, "submit cached": sub_warm}
    columns["flow cached"] = flow_warm
    print(f"\n== {title}\n")
    print_table(columns)
    print_routes(columns)
    cold, warm = flow_cold.sqlite, flow_warm.sqlite
    print(
        f"\nsummary ({title}; flow only, SQLite trace): uncached run {cold.queries} SQL statements "
        f"({cold.project_selects} SELECTs on project), {flow_cold.block_loads} Block loads; cached re-run "
        f"{warm.queries} statements ({warm.project_selects} on project), {flow_warm.block_loads} Block loads; "
        f"the submission adds {sub_cold.sqlite.queries} / {sub_warm.sqlite.queries}"
    )


def main() -> None:
    """Warm up, then measure an uncached run and its cached re-run, on built-in and on saved Blocks."""
    try:
        from core.runtime import configure_prefect_env, get_store
        from core.settings import get_settings

        settings = get_settings()
        configure_prefect_env(settings, quiet_console=True)
        import core

        print(machine())
        print(f"modules from: {Path(core.__file__).resolve().parent.parent}")
        meter = Meter(settings.db_url)
        meter.install()  # before the store's first connection, so SQLite traces them all
        get_store(settings)  # created and checked before counting starts
        print(f"state store: {meter.url.render_as_string(hide_password=True)}")
        from blocks.targets.static_host import ensure_running

        ensure_running(settings)
        one_run(meter, "a warm-up counter", "warm-up", expect_cached=False)
        scenario(meter, "embedded defaults: built-in Blocks offline, local-git, local-static")
        scenario(meter, "the same Blocks saved as the tenant's own (resolved with Block.load)", save_blocks())
    finally:
        cleanup(ROOT)


if __name__ == "__main__":
    main()
