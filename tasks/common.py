"""What every phase task shares: its cache policy, its retry rule and where it finds its things."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.client.schemas.objects import State, TaskRun
from prefect.context import TaskRunContext
from prefect.tasks import Task, exponential_backoff
from prefect.utilities.hashing import hash_objects

from core.errors import is_retryable
from core.runtime import storage_identity
from core.settings import get_settings

#: Bump when a task's output format changes, so old cache records are not reused.
CACHE_VERSION = "1"


@dataclass
class PhaseKey(CachePolicy):
    """Cache key = task name + the named inputs (minus ``exclude``) + where snapshots live.

    Unlike Prefect's ``INPUTS``, two different tasks with equal inputs never share a key, and a cache
    record made against one storage never answers for another (a new ``POMBOLT_DATA_DIR``).
    """

    exclude: list[str] = field(default_factory=lambda: ["run_id"])

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        data = {k: v for k, v in (inputs or {}).items() if k not in self.exclude}
        data["__task__"] = task_ctx.task.name
        data["__storage__"] = storage_identity()
        data["__version__"] = CACHE_VERSION
        return hash_objects(data, raise_on_failure=True)


def retry_if_retryable(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect ``retry_condition_fn``: retry only errors that say they are retryable."""
    try:
        state.result()
    except Exception as exc:
        return is_retryable(exc)
    return False


def retry_options() -> dict[str, Any]:
    """Task retry options from settings (tests shrink the delays)."""
    t = get_settings().timeouts
    return {
        "retries": t.task_retries,
        "retry_delay_seconds": exponential_backoff(backoff_factor=t.task_retry_delay),
        "retry_jitter_factor": 0.5,
        "retry_condition_fn": retry_if_retryable,
    }
