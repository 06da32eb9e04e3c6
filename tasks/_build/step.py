"""One step of a build (dependency install or ``npm run build``): started in the sandbox, watched, judged."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks._build.env import DEFAULT_PATH, SANDBOX_GID, SANDBOX_UID
from tasks._build.log import BuildLog
from tasks._build.project import Step
from tasks._build.registry_proxy import RegistryProxy, registry_proxy
from tasks._build.sandbox import BUILD_UID, Sandbox, switches_user
from tasks._build.watchdog import Watchdog, kill_tree

__all__ = ["SYSTEM_CA_BUNDLE", "Run", "Stopped", "run_step"]

#: The system's CA bundle; dependency install trusts it besides node's own CAs (a site's TLS-inspecting proxy).
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


@dataclass
class Run:
    """One build's fixed context: where it runs, how, with what."""

    work: Path
    src: Path
    env: dict[str, str]
    npm: str
    log: BuildLog
    deadline: float
    box: Sandbox | None
    network: bool  # install may reach the registry (through the proxy)
    registry: str


class Stopped(Exception):
    """Why a build stopped: ``"time"``, ``"output"``, ``"memory"``, ``"disk"`` or ``"exit N"``, and where."""

    def __init__(self, why: str, step: str = "", *, seen: int = 0, hint: str = "") -> None:
        super().__init__(why)
        self.why, self.step, self.seen, self.hint = why, step, seen, hint


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill a step: the sandbox (see :func:`tasks._build.watchdog.kill_tree`) or, without one, its process group."""
    if proc.returncode is None:  # not reaped yet: the pid is still this step's
        kill_tree(proc.pid)
    else:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # leftovers of a build without a sandbox


@contextlib.contextmanager
def _proxy_for(run: Run, step: Step) -> Iterator[tuple[RegistryProxy | None, Path | None]]:
    """The registry proxy and its folder for an install with network in the sandbox, else ``(None, None)``."""
    if run.box is None or not (step.install and run.network):
        yield None, None
        return
    owner = BUILD_UID if run.box.run_as_build_user else None
    with registry_proxy(run.registry, run.work.parent, owner=owner) as (proxy, folder):
        yield proxy, folder


def run_step(run: Run, step: Step) -> None:
    """Run one step to its end: in the sandbox (with the registry proxy for an install that has network).

    Args:
        run: The build's fixed context.
        step: The step to run.

    Raises:
        Stopped: The step failed, ran past the deadline, printed past the cap or hit a limit of the sandbox.
    """
    remaining = run.deadline - time.monotonic()
    if remaining <= 0:
        raise Stopped("time")
    run.log.add(f"$ {step.label}")
    with _proxy_for(run, step) as (proxy, proxy_dir):
        proc = _start(run, step, proxy_dir)
        watchdog = _watchdog(run, proc)
        code = _follow(run, proc, remaining, watchdog)
    _judge(run, step, proxy, watchdog, code)


def _start(run: Run, step: Step, proxy_dir: Path | None) -> subprocess.Popen[bytes]:
    """Start the step: bwrap around npm, or npm alone (as the build user when root) without a sandbox."""
    extra: dict[str, Any]
    if run.box is not None:
        step_env = dict(run.env)
        if proxy_dir is not None and Path(SYSTEM_CA_BUNDLE).is_file():
            step_env["NODE_EXTRA_CA_CERTS"] = SYSTEM_CA_BUNDLE  # bound read-only for install (TLS via a proxy)
        argv = run.box.argv(["npm", *step.args], work=run.work, cwd=run.src, env=step_env, proxy_dir=proxy_dir)
        env, extra = {"PATH": DEFAULT_PATH}, run.box.popen_kwargs()
    else:
        argv, env = [run.npm, *step.args], run.env
        extra = (
            {"user": SANDBOX_UID, "group": SANDBOX_GID, "extra_groups": [], "umask": 0o077} if switches_user() else {}
        )
    return subprocess.Popen(
        argv,
        cwd=run.src if run.box is None else run.work,
        env=env,
        **extra,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so a kill reaches every child
    )


def _watchdog(run: Run, proc: subprocess.Popen[bytes]) -> Watchdog | None:
    """The memory and disk watchdog of a sandboxed step (None without a sandbox)."""
    if run.box is None:
        return None
    return Watchdog(
        proc.pid,
        run.work,
        memory_bytes=run.box.settings.memory_mb * 1024 * 1024,
        disk_bytes=run.box.settings.max_disk_bytes,
        kill=lambda: _kill_group(proc),
    )


def _follow(run: Run, proc: subprocess.Popen[bytes], remaining: float, watchdog: Watchdog | None) -> int:
    """Read the step's output into the log until it ends (killed at the deadline); its exit code."""
    timer = threading.Timer(remaining, _kill_group, args=(proc,))
    timer.start()
    try:
        with watchdog if watchdog is not None else contextlib.nullcontext():
            assert proc.stdout is not None
            run.log.pump(proc.stdout, lambda: _kill_group(proc))
            return _wait(proc)
    finally:
        timer.cancel()
        _kill_group(proc)  # leftovers (a daemon a build script started)
        if proc.stdout is not None:
            proc.stdout.close()


def _judge(run: Run, step: Step, proxy: RegistryProxy | None, watchdog: Watchdog | None, code: int) -> None:
    """Raise :class:`Stopped` when the finished step hit a limit or failed."""
    if watchdog is not None and watchdog.reason is not None:
        raise Stopped(watchdog.reason, step.label, seen=watchdog.seen)
    if run.log.over:
        raise Stopped("output")
    hint = _hint(run, step, proxy)
    if time.monotonic() >= run.deadline:
        raise Stopped("time", step.label, hint=hint)
    if code != 0:
        raise Stopped(f"exit {code}", step.label, hint=hint)


def _wait(proc: subprocess.Popen[bytes]) -> int:
    """The step's exit code; bwrap exits by itself once its namespace is gone, else it is killed after 10 s."""
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()


def _hint(run: Run, step: Step, proxy: RegistryProxy | None) -> str:
    """Which limit of the sandbox the step's log shows it hit, in words (empty when none)."""
    if run.box is None:
        return ""
    limits = run.box.settings
    text = "\n".join(run.log.step_text)
    if proxy is not None and proxy.refused:
        refused = ", ".join(sorted(set(proxy.refused))[:5])
        return (
            f"dependency install may reach only the npm registry {run.registry} and tried {refused}; "
            "use dependencies from that registry (or set POMBOLT_BUILD_REGISTRY)"
        )
    if proxy is not None and proxy.unreachable:
        return f"the npm registry could not be reached: {'; '.join(proxy.unreachable[:3])}"
    if "SIGXCPU" in text or "CPU time limit exceeded" in text:
        return (
            f"a process of the build used more than {limits.cpu_seconds} s of CPU time and was stopped by the "
            "sandbox (POMBOLT_BUILD_CPU_SECONDS)"
        )
    if "SIGXFSZ" in text or "File size limit exceeded" in text or "EFBIG" in text or "File too large" in text:
        return (
            f"the build wrote a file larger than {limits.max_file_bytes} bytes and was stopped by the sandbox "
            "(POMBOLT_BUILD_MAX_FILE_BYTES)"
        )
    if (
        "Cannot fork" in text
        or "fork: retry" in text
        or "Resource temporarily unavailable" in text
        or ("EAGAIN" in text and "spawn" in text)
    ):
        return (
            f"the build tried to run more than {limits.max_processes} processes at once and the sandbox refused "
            "the rest (POMBOLT_BUILD_MAX_PROCESSES)"
        )
    if "ENOSPC" in text or "No space left on device" in text:
        return f"the build filled its private /tmp or /dev/shm ({limits.tmp_mb} MiB, POMBOLT_BUILD_TMP_MB)"
    if "heap out of memory" in text or "allocation failed" in text or "Cannot allocate memory" in text:
        return "the build ran out of memory"
    if step.install and not run.network and ("ENOTCACHED" in text or "offline" in text.lower()):
        return (
            "dependency install has no network here (offline, or POMBOLT_BUILD_INSTALL_NETWORK=false): only "
            "dependencies inside the project (file: tarballs) can be installed"
        )
    if not step.install and any(
        marker in text for marker in ("ECONNREFUSED", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH")
    ):
        return "the build step has no network (it runs in a sandbox); it cannot fetch anything while building"
    return ""
