"""Crash recovery with real Prefect: the flow-run process of a run is SIGKILLed after ``generate``; its runner
reports the flow run ``Crashed``; the reconciler starts a new flow run for the same run id, which resumes from
cache and reaches ``verified`` with the generator called once. Plus: a run stuck past the limit is failed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest
from prefect import flow
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, TaskRunFilter, TaskRunFilterName
from prefect.states import Crashed, Failed

from core.models import Phase, PhaseStatus, RunStatus, utcnow
from core.runtime import get_store
from core.settings import get_settings
from core.store import Store
from tests.infra.prefect_server import PrefectServer
from usecases.reconcile import CRASH_LOOP, FLOW_RUN_ENDED, STUCK, Reconciler
from usecases.submit import Submission, submit

pytestmark = pytest.mark.scale

ROOT = Path(__file__).resolve().parents[2]
SERVE = (
    "from core.runtime import configure_prefect_env; configure_prefect_env(); "
    "from flows.pipeline import requirements_to_deployment as f; f.serve(name='default', limit=4)"
)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def kill_flow_run_processes(runner_pid: int) -> list[int]:
    """SIGKILL the flow-run subprocesses of a runner (``flow.serve`` runs each flow run in a spawned process)."""
    killed = []
    for pid in _descendants(runner_pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                continue
    return killed


@pytest.fixture
def runner(server: PrefectServer, data_dir: Path, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``flow.serve`` of the pipeline in a subprocess (its own PREFECT_HOME, the test's data dir)."""
    env = {
        **os.environ,
        **server.client_env(tmp_path / "runner-home"),
        "POMBOLT_DATA_DIR": str(data_dir),
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }
    log = tmp_path / "runner.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    yield proc
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    from blocks.targets.static_host import stop

    stop(get_settings())


def _deployment_id(server: PrefectServer, timeout: float = 60) -> UUID:
    deadline = time.monotonic() + timeout
    with SyncPrefectClient(server.api_url) as client:
        while True:
            try:
                return client.read_deployment_by_name("requirements-to-deployment/default").id
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)


def _wait(what: str, check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.02)


def test_a_crashed_run_is_restarted_and_resumes_from_cache(
    server: PrefectServer, runner: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    store = get_store()
    deployment = _deployment_id(server)
    _, run, _ = submit(
        store, "local", Submission(requirements="a counter with dark mode", name="crashy"), get_settings()
    )
    with SyncPrefectClient(server.api_url) as client:
        first = client.create_flow_run_from_deployment(
            deployment, parameters={"run_id": run.id}, idempotency_key=run.id
        )
    run = store.transition(run, RunStatus.dispatched, flow_run_id=str(first.id), dispatched_at=utcnow())

    def generated() -> bool:
        phases = {p.phase: p.status for p in store.phases(run.id)}
        return phases.get(Phase.generate) == PhaseStatus.completed

    _wait("phase generate completing in the first flow run", generated, 120)
    killed = kill_flow_run_processes(runner.pid)
    assert killed, "no process of the first flow run was found to kill"
    assert store.reload(run).status == RunStatus.running, "the run finished before it could be killed"

    reconciler = Reconciler(store, api_url=server.api_url, poll_seconds=0.5)
    restarted: list[str] = []

    def verified() -> bool:
        restarted.extend(reconciler.reconcile_once().restarted)
        return store.reload(run).status in (RunStatus.verified, RunStatus.failed)

    _wait("the run reaching a final status", verified, 180)
    final = store.reload(run)
    assert final.status == RunStatus.verified, (final.error_code, final.error_message)
    assert restarted == [run.id]  # restarted exactly once
    assert final.details["crashed_flow_runs"] == [str(first.id)]
    assert final.flow_run_id != str(first.id)

    with SyncPrefectClient(server.api_url) as client:
        crashed = client.read_flow_run(first.id)
        # the run is verified just before its flow returns: wait (bounded) for the flow run to finish
        _wait(
            "the restarted flow run finishing",
            lambda: client.read_flow_run(UUID(final.flow_run_id)).state.is_final(),
            60,
        )
        again = client.read_flow_run(UUID(final.flow_run_id))
        generates = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[first.id, again.id])),
            task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="generate")),
        )
    assert crashed.state is not None and crashed.state.is_crashed()
    assert again.state is not None and again.state.is_completed()
    by_flow = {str(t.flow_run_id): t.state.name for t in generates if t.state is not None}
    # the generator ran once, in the crashed flow run; the restart took its result from the cache
    assert by_flow == {str(first.id): "Completed", str(again.id): "Cached"}
    assert {p.phase: p.cached for p in store.phases(run.id)}[Phase.generate] is True


def test_a_run_without_progress_past_the_limit_is_failed_with_the_reason(
    server: PrefectServer, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POMBOLT_STUCK_AFTER_SECONDS", "60")
    get_settings.cache_clear()
    store: Store = get_store()
    _, run, _ = submit(store, "local", Submission(requirements="a timer", name="stuck"), get_settings())
    fresh = store.transition(run, RunStatus.dispatched, dispatched_at=utcnow())
    _, old, _ = submit(store, "local", Submission(requirements="a stopwatch", name="old"), get_settings())
    old = store.transition(old, RunStatus.dispatched, dispatched_at=utcnow() - timedelta(seconds=120))
    old = store.transition(old, RunStatus.running, started_at=utcnow() - timedelta(seconds=90), phase=Phase.build)

    report = Reconciler(store, api_url=server.api_url).reconcile_once()

    assert report.failed == [old.id]
    failed = store.reload(old)
    assert (failed.status, failed.error_code, failed.error_phase) == (RunStatus.failed, STUCK, "build")
    assert "in phase build" in (failed.error_message or "") and "POMBOLT_STUCK_AFTER_SECONDS" in failed.error_message
    assert store.reload(fresh).status == RunStatus.dispatched  # 0 s without progress: left alone


@flow(name="reconciler-probe")
def probe() -> None:
    """Never run: only its flow runs' states are set, as a dead worker or the UI would leave them."""


def test_a_crash_loop_and_a_flow_run_that_ended_without_a_result_are_failed(
    server: PrefectServer, data_dir: Path
) -> None:
    store = get_store()
    settings = get_settings()
    _, looping, _ = submit(store, "local", Submission(requirements="a timer", name="looping"), settings)
    _, ended, _ = submit(store, "local", Submission(requirements="a stopwatch", name="ended"), settings)
    with SyncPrefectClient(server.api_url) as client:
        crashed = client.create_flow_run(probe, parameters={})
        client.set_flow_run_state(crashed.id, Crashed(message="worker died"), force=True)
        failed = client.create_flow_run(probe, parameters={})
        client.set_flow_run_state(failed.id, Failed(message="ImportError: no module named flows"), force=True)
    looping = store.transition(looping, RunStatus.dispatched, flow_run_id=str(crashed.id))
    looping = store.transition(looping, RunStatus.running, phase=Phase.deploy)
    looping = store.update(looping, details={"crash_restarts": settings.crash_restarts})  # restarted twice already
    ended = store.transition(ended, RunStatus.dispatched, flow_run_id=str(failed.id))

    report = Reconciler(store, api_url=server.api_url).reconcile_once()

    assert sorted(report.failed) == sorted([looping.id, ended.id]) and report.restarted == []
    loop = store.reload(looping)
    assert (loop.status, loop.error_code, loop.error_phase) == (RunStatus.failed, CRASH_LOOP, "deploy")
    assert "crashed 3 times" in (loop.error_message or "") and "worker died" in (loop.error_message or "")
    gone = store.reload(ended)
    assert (gone.status, gone.error_code) == (RunStatus.failed, FLOW_RUN_ENDED)
    assert "ended Failed" in (gone.error_message or "") and "ImportError" in (gone.error_message or "")
