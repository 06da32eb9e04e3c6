"""What one pipeline run costs the state store: Project-row reads and Block resolutions, counted for real.

Every statement the store's engine sends passes SQLAlchemy's ``before_cursor_execute`` event; the test
listens to it while the flow runs and counts the SELECTs on table ``project`` (every read of the Project
row, the read-backs of optimistic updates included) and on table ``blockbinding`` (one per resolution of a
saved Block, each followed by a ``Block.load`` from Prefect). All three Blocks are saved ones, so every
resolution shows. The CLI is left out: the flow is called directly on a queued run.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from blocks.catalog import save_block
from blocks.repositories.local_git import LocalGitRepository
from blocks.targets.local_static import LocalStaticSite
from core.runtime import get_store
from core.settings import get_settings
from flows.pipeline import requirements_to_deployment
from tests.e2e.test_blocks import CountingGenerator, calls
from usecases.submit import Submission, submit

pytestmark = pytest.mark.e2e

REQ = "a pomodoro timer with a task list"
_SELECT_FROM = re.compile(r"^\s*SELECT\b.*?\bFROM\s+(\w+)", re.IGNORECASE | re.DOTALL)

#: Measured: an uncached run reads the Project row 6 times (the tracker once; generate, publish and deploy once
#: each; publish and deploy once more when their optimistic update reads the row back) and resolves each Block
#: once for the whole run; a cached run reads it 3 times (tracker, deploy and its read-back). Before the phase
#: context (tasks/_phase.py) it was 15 reads and 9 resolutions uncached, 6 and 4 cached.
MAX_PROJECT_READS = {"uncached": 6, "cached": 3}
MAX_BLOCK_RESOLUTIONS = {"uncached": 3, "cached": 3}


@pytest.fixture(autouse=True)
def isolated(data_dir: Path) -> Iterator[Path]:
    from blocks.targets.static_host import ensure_running, stop

    ensure_running(get_settings())
    yield data_dir
    stop(get_settings())


@contextmanager
def tables_selected() -> Iterator[Counter[str]]:
    """Count, per table, the SELECTs the state store sends while the block runs."""
    engine = get_store().engine
    seen: Counter[str] = Counter()

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        match = _SELECT_FROM.match(statement)
        if match:
            seen[match.group(1).lower()] += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def queue_run(name: str) -> str:
    """A queued run of project ``name`` whose three Blocks are all saved ones."""
    store, settings = get_store(), get_settings()
    tenant = settings.default_tenant
    sub = Submission(requirements=REQ, name=name, generator="counting", repository="repo", target="site")
    _, run, _ = submit(store, tenant, sub, settings)
    return run.id


def test_a_run_reads_the_project_row_and_resolves_each_block_a_few_times(tmp_path: Path) -> None:
    store, tenant = get_store(), get_settings().default_tenant
    store.ensure_tenant(tenant)
    counter = tmp_path / "generate-calls"
    save_block(store, tenant, "counting", CountingGenerator(counter_file=str(counter)))
    save_block(store, tenant, "repo", LocalGitRepository())
    save_block(store, tenant, "site", LocalStaticSite())

    measured: dict[str, Counter[str]] = {}
    for label in ("uncached", "cached"):
        run_id = queue_run("costs")
        with tables_selected() as selects:
            summary = requirements_to_deployment(run_id)
        assert summary.status == "verified"
        measured[label] = selects
    assert calls(counter) == 1, "the second run came from cache"

    report = {label: (c["project"], c["blockbinding"]) for label, c in measured.items()}
    print(f"\nproject reads, block resolutions per run: {report}")
    for label, selects in measured.items():
        assert selects["project"] <= MAX_PROJECT_READS[label], report
        assert selects["blockbinding"] <= MAX_BLOCK_RESOLUTIONS[label], report
