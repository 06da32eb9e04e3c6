"""Load what a phase task works on from ids (tasks receive ids only)."""

from __future__ import annotations

from typing import Any

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from core.errors import ConcurrentUpdate
from core.models import Project, Run
from core.runtime import get_snapshots, get_store
from core.snapshots import SnapshotStore
from core.store import Store


class PhaseContext:
    """The store, the run, its project and the tenant's snapshots."""

    def __init__(self, run_id: str) -> None:
        self.store: Store = get_store()
        self.run: Run = self.store.get_run(run_id)
        self.project: Project = self.store.get_project(self.run.project_id)
        self.snapshots: SnapshotStore = get_snapshots(self.run.tenant_id)

    def save_project_state(self, **changes: Any) -> Project:
        """Update the project's remote state with optimistic concurrency (re-read on a lost race)."""
        for attempt in Retrying(
            stop=stop_after_attempt(5), retry=retry_if_exception_type(ConcurrentUpdate), reraise=True
        ):
            with attempt:
                self.project = self.store.update(self.store.reload(self.project), **changes)
        return self.project
