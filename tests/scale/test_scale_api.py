"""The issue-9 scale test: the whole scale-out stack on 127.0.0.1, driven only through the HTTP API.

Started here, each in its own process group and stopped by PID: PostgreSQL (state store and Prefect's
database), a Prefect server on it with an auth string, the API (``uvicorn api.app:create_app --factory`` with
the dispatcher on), a reconciler (``python -m ops.reconciler``) and 3 process workers
(``prefect worker start --pool pombolt``). In this process: moto's S3 server (snapshots, Prefect results and
the websites), the fake GitHub and a webhook receiver. Every server process has its own POMBOLT_DATA_DIR and
PREFECT_HOME: they share state only through PostgreSQL and S3. Deployments come from ``prefect deploy --all``.

1. ``POMBOLT_SCALE_PROJECTS`` (default 30) projects submitted concurrently with ``POST /api/requirements``
   (fake GitHub repository + S3Website target, saved as the tenant's Blocks with ``PUT /api/blocks``): all
   ``verified``, one completed flow run and one commit each, spread over more than one worker, no 5xx.
2. A project whose GitHub token is revoked fails in preflight: the webhook receives exactly one alert.
3. A worker's whole process group (and its flow-run process) is SIGKILLed after a run passed ``generate`` and
   before ``deploy``; a heartbeat automation marks the flow run ``Crashed``, the reconciler restarts it, it
   reaches ``verified`` and the generator ran once for it.
4. The request id the client sent is in the API log and on the requests the fake GitHub received.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from core.models import Phase, PhaseStatus, Run, RunStatus
from core.store import Store
from tests.fakes.base import FaultPlan
from tests.fakes.github import FakeGitHub
from tests.infra import free_port, wait_for_port
from tests.infra.postgres import postgres
from tests.infra.prefect_server import PrefectServer, prefect_server
from tests.scale.test_alerting import WebhookReceiver

pytestmark = [pytest.mark.scale, pytest.mark.timeout(1500)]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORKERS = 3
PROJECTS = int(os.environ.get("POMBOLT_SCALE_PROJECTS", "30"))
TENANT = "scale"
TOKEN = "ghp_scale_token_0123456789abcdef"
AWS_SECRET = "moto-scale-secret-0123456789"
HEARTBEAT = 30  # Prefect's minimum flow-run heartbeat period
STORAGE_BUCKET, SITES_BUCKET = "pombolt-storage", "pombolt-sites"
LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"out": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stdout"}},
    "root": {"level": "INFO", "handlers": ["out"]},
}


def _stop_group(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM a process group we started, then SIGKILL it if it lingers (bounded waits)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    except ProcessLookupError:
        pass


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


def _runs_flow_run(pid: int, flow_run_id: str) -> bool:
    try:
        return f"PREFECT__FLOW_RUN_ID={flow_run_id}".encode() in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def _wait(what: str, check: Callable[[], bool], timeout: float, every: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(every)


@dataclass
class Stack:
    """Everything the tests talk to, plus the processes to stop."""

    server: PrefectServer
    store: Store
    api_url: str
    api_log: Path
    key: str
    github: FakeGitHub
    webhook: WebhookReceiver
    tmp: Path
    env: dict[str, str]
    moto_url: str
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def env_for(self, name: str) -> dict[str, str]:
        """A process's environment: shared database and storage, its own data dir and Prefect home."""
        return {
            **self.env,
            **self.server.client_env(self.tmp / f"home-{name}"),
            "POMBOLT_DATA_DIR": str(self.tmp / f"data-{name}"),
        }

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = self.tmp / f"{name}.log"
        self.logs[name] = log
        with log.open("ab") as out:
            proc = subprocess.Popen(
                argv, cwd=ROOT, env=self.env_for(name), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.procs.append(proc)
        return proc

    def start_worker(self, name: str) -> None:
        argv = [str(BIN / "prefect"), "worker", "start", "--pool", "pombolt", "--name", name, "--limit", "3"]
        self.workers[name] = self.spawn(name, argv)

    def run(self, run_id: str) -> Run:
        return self.store.get_run(run_id, TENANT)


def _save_storage_block(server: PrefectServer, moto_url: str) -> str:
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings
    from prefect_aws import AwsCredentials, S3Bucket
    from pydantic import SecretStr

    bucket = S3Bucket(
        bucket_name=STORAGE_BUCKET,
        credentials=AwsCredentials(
            aws_access_key_id="testing",
            aws_secret_access_key=SecretStr(AWS_SECRET),
            region_name="us-east-1",
            aws_client_parameters={"endpoint_url": moto_url},
        ),
    )
    with temporary_settings({PREFECT_API_URL: server.api_url, PREFECT_API_AUTH_STRING: server.auth_string}):
        bucket.save("pombolt-storage", overwrite=True)
    return "s3-bucket/pombolt-storage"


def _create_zombie_automation(server: PrefectServer) -> None:
    """What `pombolt init` creates: no heartbeat from a running flow run → ``Crashed`` (shorter window here)."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    from usecases.alerts import ensure_crash_detection

    with temporary_settings({PREFECT_API_URL: server.api_url, PREFECT_API_AUTH_STRING: server.auth_string}):
        ensure_crash_detection(within_seconds=HEARTBEAT + 20)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start every service (bounded waits), yield, stop everything by PID / process group."""
    started = time.monotonic()
    tmp = tmp_path_factory.mktemp("scale-api")
    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    moto_url = f"http://127.0.0.1:{moto_port}"
    github = FakeGitHub(users={TOKEN: "scale-bot"}).start()
    webhook = WebhookReceiver().start()
    try:
        s3 = boto3.client(
            "s3",
            endpoint_url=moto_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key=AWS_SECRET,
        )
        for bucket in (STORAGE_BUCKET, SITES_BUCKET):
            s3.create_bucket(Bucket=bucket)
        with postgres("prefect", databases=("pombolt",)) as pg:
            auth = f"admin:{secrets.token_urlsafe(16)}"
            with prefect_server(tmp / "server", database_url=pg.asyncpg_url, auth_string=auth) as server:
                state_url = pg.psycopg_url.replace("/prefect", "/pombolt")
                storage = _save_storage_block(server, moto_url)
                env = {
                    **os.environ,
                    "POMBOLT_DATABASE_URL": state_url,
                    "POMBOLT_STORAGE_BLOCK": storage,
                    # a worker's flow-run process imports Prefect before our code, so configure_prefect_env
                    # cannot set these there any more: give them to the workers, as docs/operations.md must say
                    "PREFECT_DEFAULT_RESULT_STORAGE_BLOCK": storage,
                    "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
                    "POMBOLT_ALERT_WEBHOOK_URL": f"{webhook.url}/hooks/alerts",
                    "POMBOLT_TENANT_CONCURRENCY": "9",
                    "POMBOLT_API_DISPATCHER": "true",
                    "POMBOLT_API_DISPATCH_POLL_SECONDS": "0.5",
                    "POMBOLT_API_RATE_LIMIT": "1000/second",
                    "PREFECT_WORKER_QUERY_SECONDS": "1",
                    "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT),
                    "AWS_DEFAULT_REGION": "us-east-1",
                    "NO_PROXY": "127.0.0.1,localhost",
                }
                for name in ("PREFECT_LOCAL_STORAGE_PATH", "PREFECT_HOME"):
                    env.pop(name, None)
                store = Store(state_url)
                store.init()
                _, key = store.create_api_key(TENANT)
                api_port = free_port()
                stack = Stack(
                    server,
                    store,
                    f"http://127.0.0.1:{api_port}",
                    tmp / "api.log",
                    key,
                    github,
                    webhook,
                    tmp,
                    env,
                    moto_url,
                )
                stack.started = started
                try:
                    _setup(stack, api_port)
                    yield stack
                finally:
                    for proc in reversed(stack.procs):
                        _stop_group(proc)
    finally:
        webhook.stop()
        github.stop()
        moto.stop()


def _setup(stack: Stack, api_port: int) -> None:
    for name, argv in (
        ("init", [str(BIN / "pombolt"), "init"]),
        ("deploy", [str(BIN / "prefect"), "--no-prompt", "deploy", "--all"]),
    ):
        done = subprocess.run(argv, cwd=ROOT, env=stack.env_for("cli"), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{name}: {done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    _create_zombie_automation(stack.server)
    # the operator step for a new tenant: its fairness limit exists before its first runs. (Created on demand
    # by many concurrent first runs, the racing inserts make Prefect's server answer 500 on PostgreSQL.)
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    from core.concurrency import ensure_tenant_limit

    auth = stack.server.auth_string
    with temporary_settings({PREFECT_API_URL: stack.server.api_url, PREFECT_API_AUTH_STRING: auth}):
        assert ensure_tenant_limit(TENANT, slots=9)
    log_config = stack.tmp / "api-logging.json"
    log_config.write_text(json.dumps(LOG_CONFIG))
    stack.spawn(
        "api",
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(api_port),
            "--log-config",
            str(log_config),
        ],
    )
    stack.spawn("reconciler", [sys.executable, "-m", "ops.reconciler"])
    for i in range(WORKERS):
        stack.start_worker(f"w{i}")
    wait_for_port(api_port, timeout=60, what="the API")
    for slug, name, body in (
        ("pombolt-github-repository", "gh", {"credentials": {"token": TOKEN}, "api_url": stack.github.url}),
        ("pombolt-github-repository", "gh-revoked", {"credentials": {"token": "revoked"}, "api_url": stack.github.url}),
        ("pombolt-s3-website", "site", _site_block(stack)),
    ):
        r = httpx.put(f"{stack.api_url}/api/blocks/{slug}/{name}", json=body, headers=stack.headers, timeout=30)
        assert r.status_code == 200, r.text
    time.sleep(2)  # the triggers service loads new automations every few seconds


def _site_block(stack: Stack) -> dict[str, Any]:
    return {
        "bucket": {
            "bucket_name": SITES_BUCKET,
            "credentials": {
                "aws_access_key_id": "testing",
                "aws_secret_access_key": AWS_SECRET,
                "region_name": "us-east-1",
                "aws_client_parameters": {"endpoint_url": stack.moto_url},
            },
        },
        "prefix": "sites",
        "public_read_acl": True,  # moto serves objects to anonymous readers only with a public-read ACL
    }


def _submit(stack: Stack, i: int, name: str, repository: str = "gh") -> dict[str, Any]:
    body = {"requirements": f"a counter number {i} with dark mode", "name": name, "repository": repository}
    body["target"] = "site"
    headers = {**stack.headers, "X-Request-Id": f"scale-req-{name}"}
    r = httpx.post(f"{stack.api_url}/api/requirements", json=body, headers=headers, timeout=60)
    assert r.status_code == 202, r.text
    assert r.headers["X-Request-Id"] == f"scale-req-{name}"
    accepted: dict[str, Any] = r.json()
    return accepted


def _final(stack: Stack, run_ids: list[str], timeout: float) -> list[Run]:
    done = (RunStatus.verified, RunStatus.failed, RunStatus.cancelled)
    _wait("every run finishing", lambda: all(stack.run(r).status in done for r in run_ids), timeout)
    return [stack.run(r) for r in run_ids]


def _flow_runs_final(stack: Stack, ids: list[str], timeout: float) -> list[Any]:
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(stack.server.api_url, auth_string=stack.server.auth_string) as client:

        def final() -> bool:
            return all((s := client.read_flow_run(UUID(i)).state) is not None and s.is_final() for i in ids)

        _wait("the flow runs finishing", final, timeout)
        return [client.read_flow_run(UUID(i)) for i in ids]


def _taken(stack: Stack) -> dict[str, set[str]]:
    """Flow runs each worker ran (losers of a race log 'Aborted submission')."""
    out = {}
    for name in stack.workers:
        body = stack.logs[name].read_text(errors="replace")
        out[name] = set(re.findall(r"submitting flow run '([0-9a-f-]{36})'", body)) - set(
            re.findall(r"Aborted submission of flow run '([0-9a-f-]{36})'", body)
        )
    return out


def _no_5xx(stack: Stack) -> None:
    """No client of the Prefect server (API + dispatcher, reconciler, workers, flow runs) got a 5xx from it,
    and the server itself logged no failed request."""
    to_server = re.compile(rf"HTTP Request: \w+ {re.escape(stack.server.api_url)}\S* \"HTTP/1\.1 5\d\d")
    for name, log in stack.logs.items():
        body = log.read_text(errors="replace")
        fives = to_server.findall(body) + re.findall(r"(?:status code |Server error ')5\d\d.*", body)
        assert not fives, f"{name} saw a 5xx from the Prefect server: {fives[:3]}"
        assert "database is locked" not in body, name
    server_log = stack.server.log.read_text(errors="replace")
    assert "Encountered exception in request" not in server_log and "Traceback" not in server_log, server_log[-3000:]


def test_projects_submitted_through_the_api_all_go_live_on_three_workers(stack: Stack) -> None:
    setup_seconds = time.monotonic() - stack.started
    submitted = time.monotonic()
    with ThreadPoolExecutor(max_workers=10) as pool:
        accepted = list(pool.map(lambda i: _submit(stack, i, f"p{i}"), range(PROJECTS)))
    runs = _final(stack, [a["run_id"] for a in accepted], timeout=120 + 15 * PROJECTS)
    verified_at = time.monotonic()
    assert [r.status for r in runs] == [RunStatus.verified] * PROJECTS, [
        (r.status, r.error_phase, r.error_code, r.error_message) for r in runs if r.status != RunStatus.verified
    ]
    flow_runs = _flow_runs_final(stack, [r.flow_run_id for r in runs if r.flow_run_id], timeout=120)
    assert len(flow_runs) == PROJECTS and all(f.state.is_completed() for f in flow_runs)

    ours = {str(f.id) for f in flow_runs}
    # (workers also take other flow runs, e.g. the scheduled verify-live-sites: only ours are counted)
    taken = {name: ids & ours for name, ids in _taken(stack).items()}
    all_taken = sorted(fr for ids in taken.values() for fr in ids)
    assert all_taken == sorted(ours), "each run: exactly one flow run, on one worker"
    assert sum(1 for ids in taken.values() if ids) > 1, f"runs did not spread: {taken}"
    for run in runs:
        assert run.repository_url and run.commit_sha and run.live_url
        full = "/".join(run.repository_url.rstrip("/").split("/")[-2:])
        assert stack.github.history(full) == [run.commit_sha], full
        assert httpx.get(run.live_url, timeout=10).status_code == 200
    _no_5xx(stack)

    # the request id: sent by the client, logged by the API, carried to GitHub on every call of the run
    sample = runs[0]
    assert sample.request_id == "scale-req-p0"
    assert "request id scale-req-p0" in stack.api_log.read_text(errors="replace")
    sent = [r for r in stack.github.requests() if r.headers.get("X-Request-Id") == sample.request_id]
    assert sent and any(r.method == "POST" for r in sent)
    assert all(f"request:{r.request_id}" in f.tags for r, f in zip(runs, flow_runs, strict=True)), (
        "the flow run is tagged with its request id"
    )

    seconds = verified_at - submitted
    print(
        f"\nscale (API): {PROJECTS} projects on {WORKERS} workers: setup {setup_seconds:.1f}s, submit → all verified "
        f"{seconds:.1f}s ({PROJECTS / seconds * 60:.1f} projects/min), spread {[len(v) for v in taken.values()]}"
    )
    assert not stack.webhook.requests("POST"), "no alert for runs that all went live"


def test_a_failing_project_sends_exactly_one_alert(stack: Stack) -> None:
    accepted = _submit(stack, 900, "doomed", repository="gh-revoked")
    (run,) = _final(stack, [accepted["run_id"]], timeout=120)
    assert (run.status, run.error_phase, run.error_code) == (RunStatus.failed, "preflight", "provider.auth")
    _wait("the alert", lambda: bool(stack.webhook.requests("POST")), 60)
    time.sleep(3)  # a duplicate would arrive within this
    alerts = [r.json() for r in stack.webhook.requests("POST")]
    assert len(alerts) == 1, alerts
    assert alerts[0]["subject"] == "Pom-Bolt: run failed in preflight (doomed)"
    assert f"request id: {run.request_id}" in alerts[0]["body"]
    assert TOKEN not in alerts[0]["body"]


def test_a_killed_worker_crashes_its_run_which_is_restarted_and_resumes_from_cache(stack: Stack) -> None:
    # slow GitHub for this project only, so the window between generate and deploy is seconds wide
    stack.github.set_fault_plan(FaultPlan(latency=(1.0, 1.0), only=("*", r"/repos/scale-bot/crashy-.*")))
    started = time.monotonic()
    accepted = _submit(stack, 901, "crashy")
    run_id = accepted["run_id"]

    def generated() -> bool:
        phases = {p.phase: p.status for p in stack.store.phases(run_id)}
        return phases.get(Phase.generate) == PhaseStatus.completed

    _wait("phase generate completing", generated, 180, every=0.02)
    first = stack.run(run_id).flow_run_id
    assert first is not None
    owner = next(
        (name for name, proc in stack.workers.items() if any(_runs_flow_run(p, first) for p in _descendants(proc.pid))),
        None,
    )
    assert owner is not None, "no worker runs the flow run"
    victim = stack.workers[owner]
    groups = {victim.pid} | {os.getpgid(p) for p in _descendants(victim.pid) if Path(f"/proc/{p}").exists()}
    for group in groups:  # the worker and its flow-run process (Prefect starts that in its own session)
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            continue
    victim.wait(10)
    phases = {p.phase: p.status for p in stack.store.phases(run_id)}
    assert Phase.deploy not in phases, f"killed too late: {phases}"

    (run,) = _final(stack, [run_id], timeout=4 * HEARTBEAT + 180)
    assert run.status == RunStatus.verified, (run.error_code, run.error_message)
    assert run.details["crashed_flow_runs"] == [first]
    assert run.flow_run_id != first
    stack.github.clear_faults()

    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, TaskRunFilter, TaskRunFilterName

    (again,) = _flow_runs_final(stack, [run.flow_run_id], timeout=60)  # type: ignore[list-item]
    with SyncPrefectClient(stack.server.api_url, auth_string=stack.server.auth_string) as client:
        history = [s.name for s in client.read_flow_run_states(UUID(first))]
        generates = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(first), again.id])),
            task_run_filter=TaskRunFilter(name=TaskRunFilterName(like_="generate")),
        )
    assert "Crashed" in history, history
    assert again.state.is_completed()
    by_flow = {str(t.flow_run_id): t.state.name for t in generates if t.state is not None}
    assert by_flow == {first: "Completed", str(again.id): "Cached"}, by_flow  # the generator ran once
    crash_alerts = [r.json() for r in stack.webhook.requests("POST") if "crashed" in r.json()["subject"]]
    assert len(crash_alerts) == 1, crash_alerts
    print(f"\nscale (API): crash → verified again in {time.monotonic() - started:.1f}s; history {history}")
    print(f"scale (API): whole module {time.monotonic() - stack.started:.1f}s")
