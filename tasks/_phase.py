"""What every phase task shares: one decorator for its options, one context for the things it works on.

:func:`phase_task` gives a phase its cache key (:class:`PhaseKey`), its timeout and the retry rule (retry only
errors that say they are retryable). :class:`PhaseContext` loads what a task works on from ids, each thing at
most once per task: the run, its project (only when asked for), the tenant's snapshots and the run's Blocks.

Blocks are resolved once per flow run when the flow shares them (:class:`RunBlocks`, :func:`sharing`): the flow
needs their fingerprints for cache keys anyway, and every phase running in the flow's process then uses the
same Blocks. A task run on its own (``task.fn(...)`` in a test, another process) resolves what it needs once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ParamSpec, TypeVar, cast

from prefect import Task, task
from prefect.blocks.core import Block
from prefect.cache_policies import NO_CACHE, CachePolicy
from prefect.client.schemas.objects import State, TaskRun
from prefect.context import TaskRunContext
from prefect.tasks import exponential_backoff
from prefect.utilities.hashing import hash_objects
from pydantic import BaseModel, ConfigDict
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from blocks.catalog import NO_REPOSITORY, Kind, resolve
from blocks.generators.base import Generator, Usage, config_fingerprint
from blocks.repositories.base import RepositoryTarget
from blocks.targets.base import DeploymentTarget
from core.errors import ConcurrentUpdate, ConfigError, is_retryable
from core.models import Project, Run, RunDetails
from core.runtime import get_snapshots, get_store, storage_identity
from core.settings import get_settings
from core.snapshots import SnapshotStore
from core.store import Store

P = ParamSpec("P")
R = TypeVar("R")

#: Bump when a task's output format changes, so old cache records are not reused.
CACHE_VERSION = "2"
KINDS: tuple[Kind, ...] = ("generator", "repository", "target")


# --- the task options ----------------------------------------------------------------------------
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


@dataclass(frozen=True)
class Reuse:
    """What a cached phase result is checked against before the flow reuses it."""

    snapshots: SnapshotStore
    project: Project  # as the run found it when it started


#: A phase's test of a cached result: does what it points to still exist (or still hold)?
ReuseCheck = Callable[[Any, Reuse], bool]
_REUSE_CHECKS: dict[str, ReuseCheck] = {}


def phase_task(
    name: str,
    *,
    timeout: float,
    cache: bool = True,
    expires: timedelta | None = None,
    run_name: str | None = None,
    reuse_if: ReuseCheck | None = None,
) -> Callable[[Callable[P, R]], Task[P, R]]:
    """The decorator of every phase task: its name, cache policy, timeout and retry rule.

    Args:
        name: The task's name (and the first part of its cache key).
        timeout: Seconds one attempt may take.
        cache: Whether results are cached on the task's inputs (:class:`PhaseKey`); False runs it every time.
        expires: How long a cached result answers (default: for ever).
        run_name: The task run's name template (``"generate-file {path}"``).
        reuse_if: For a cached phase, whether a cached result may be reused (see :func:`still_holds`).
    """
    if reuse_if is not None:
        _REUSE_CHECKS[name] = reuse_if
    timeouts = get_settings().timeouts
    return task(
        name=name,
        task_run_name=run_name,
        cache_policy=PhaseKey() if cache else NO_CACHE,
        cache_expiration=expires,
        timeout_seconds=timeout,
        retries=timeouts.task_retries,
        retry_delay_seconds=exponential_backoff(backoff_factor=timeouts.task_retry_delay),
        retry_jitter_factor=0.5,
        retry_condition_fn=retry_if_retryable,
    )


def still_holds(task: Task[..., Any], result: Any, reuse: Reuse) -> bool:
    """Whether a cached result of ``task`` may be reused: what it points to was not lost from storage since.

    Storage can be partly deleted while Prefect's task results survive; a cached result pointing to a lost
    generation or snapshot must be computed again, or every later run would fail the same way.
    """
    check = _REUSE_CHECKS.get(task.name)
    return True if check is None else check(result, reuse)


# --- the Blocks of a run -------------------------------------------------------------------------
class BlockRefs(BaseModel):
    """The Block references a run uses (names, never secrets)."""

    model_config = ConfigDict(frozen=True)

    generator: str
    repository: str
    target: str

    @classmethod
    def of(cls, project: Project) -> BlockRefs:
        """The references a project names."""
        return cls(generator=project.generator_ref, repository=project.repository_ref, target=project.target_ref)

    def of_kind(self, kind: Kind) -> str:
        """The reference of one kind of Block."""
        return {"generator": self.generator, "repository": self.repository, "target": self.target}[kind]


class RunBlocks:
    """The Blocks one run uses, each resolved at most once, shared by the phases of its flow run."""

    def __init__(self, run: Run, refs: BlockRefs, store: Store) -> None:
        self.run_id, self.tenant_id, self.refs, self._store = run.id, run.tenant_id, refs, store
        self._resolved: dict[Kind, Block | None] = {}
        self._lock = threading.Lock()  # mapped tasks ask from several threads at once

    def serves(self, run_id: str, kind: Kind, ref: str) -> bool:
        """Whether this set holds the Block a task of ``run_id`` asks for."""
        return run_id == self.run_id and self.refs.of_kind(kind) == ref

    def get(self, kind: Kind) -> Block | None:
        """The run's Block of this kind (None for no repository), resolved on first use."""
        with self._lock:
            if kind not in self._resolved:
                ref = self.refs.of_kind(kind)
                self._resolved[kind] = resolve(kind, ref, tenant_id=self.tenant_id, store=self._store)
            return self._resolved[kind]

    def fingerprints(self) -> dict[str, str]:
        """Hash of each Block's non-secret configuration (``none`` for no repository), for cache keys."""
        prints: dict[str, str] = {}
        for kind in KINDS:
            block = self.get(kind)
            if isinstance(block, Generator):
                prints[kind] = block.fingerprint()  # includes template and prompt digests
            else:
                prints[kind] = config_fingerprint(block) if block is not None else NO_REPOSITORY
        return prints


_SHARED: ContextVar[RunBlocks | None] = ContextVar("pombolt_run_blocks", default=None)


@contextmanager
def sharing(blocks: RunBlocks) -> Iterator[RunBlocks]:
    """Let every phase task started inside the block (threads of mapped tasks included) use ``blocks``."""
    token = _SHARED.set(blocks)
    try:
        yield blocks
    finally:
        _SHARED.reset(token)


# --- what one task works on ----------------------------------------------------------------------
_CHARGE_LOCK = threading.Lock()  # mapped tasks of one run charge it from several threads


class PhaseContext:
    """The store, the run, its project, its Blocks and the tenant's snapshots — each loaded at most once."""

    def __init__(self, run_id: str) -> None:
        self.store: Store = get_store()
        self.run: Run = self.store.get_run(run_id)
        self.snapshots: SnapshotStore = get_snapshots(self.run.tenant_id)
        self._project: Project | None = None
        self._blocks: dict[tuple[Kind, str], Block | None] = {}

    @property
    def details(self) -> RunDetails:
        """The run's details, typed."""
        return self.run.info()

    @property
    def project(self) -> Project:
        """The run's project (read on first use, once)."""
        if self._project is None:
            self._project = self.store.get_project(self.run.project_id)
        return self._project

    def block(self, kind: Kind, ref: str) -> Block | None:
        """The Block ``ref`` names: the flow's when it shares the run's Blocks, else resolved here once."""
        key = (kind, ref)
        if key not in self._blocks:
            shared = _SHARED.get()
            if shared is not None and shared.serves(self.run.id, kind, ref):
                self._blocks[key] = shared.get(kind)
            else:
                self._blocks[key] = resolve(kind, ref, tenant_id=self.run.tenant_id, store=self.store)
        return self._blocks[key]

    def generator(self, ref: str) -> Generator:
        """The generator Block ``ref`` names."""
        return cast(Generator, self._required("generator", ref))

    def repository(self, ref: str) -> RepositoryTarget:
        """The repository Block ``ref`` names (not ``none``)."""
        return cast(RepositoryTarget, self._required("repository", ref))

    def target(self, ref: str) -> DeploymentTarget:
        """The deployment target Block ``ref`` names."""
        return cast(DeploymentTarget, self._required("target", ref))

    def _required(self, kind: Kind, ref: str) -> Block:
        block = self.block(kind, ref)
        if block is None:
            raise ConfigError(f"{kind} reference {ref!r} names no Block")
        return block

    def save_project_state(self, **changes: Any) -> Project:
        """Write the project's remote state with optimistic concurrency (re-read only after a lost race)."""
        project = self.project
        for attempt in Retrying(
            stop=stop_after_attempt(5), retry=retry_if_exception_type(ConcurrentUpdate), reraise=True
        ):
            with attempt:
                try:
                    self._project = self.store.update(project, **changes)
                except ConcurrentUpdate:
                    project = self.store.reload(project)
                    raise
        return self.project

    def charge(self, usage: Usage) -> None:
        """Add what a paid call cost to the run, as soon as the provider answered (the one writer of spend)."""
        if usage.free:
            return
        with _CHARGE_LOCK:
            for attempt in Retrying(
                stop=stop_after_attempt(5), retry=retry_if_exception_type(ConcurrentUpdate), reraise=True
            ):
                with attempt:
                    run = self.store.get_run(self.run.id)
                    self.run = self.store.update(
                        run,
                        llm_calls=run.llm_calls + usage.calls,
                        prompt_tokens=run.prompt_tokens + usage.prompt_tokens,
                        completion_tokens=run.completion_tokens + usage.completion_tokens,
                    )
