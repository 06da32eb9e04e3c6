"""npm builds of generated projects, in a sandbox with an allow-listed environment (DESIGN §6).

A project needs a build when its ``package.json`` has a ``build`` script. The build runs generated code, so:

- every step (dependency install, then ``npm run build``) runs in the bubblewrap sandbox of
  :mod:`tasks._build.sandbox`: its own network namespace (the build step has no network at all; install reaches
  only the npm registry, through an allow-listing proxy, or nothing when offline), a filesystem view of the
  work dir and the toolchain only, limits on CPU time, memory, processes, file and disk size, and no npm
  lifecycle scripts (``--ignore-scripts``) unless ``POMBOLT_BUILD_LIFECYCLE_SCRIPTS=true``. Where bwrap is
  missing the build is refused (:class:`~core.errors.ConfigError`: ``apt-get install bubblewrap``); only the
  local CLI tenant ``local`` may opt out with ``POMBOLT_BUILD_SANDBOX=off``;
- it runs in a fresh work dir (the source is copied there; nothing else of ours is reachable by path); the
  project's own ``.npmrc`` is not used (a few harmless keys, e.g. ``legacy-peer-deps``, are carried over);
- its environment is built from nothing: ``PATH``, ``HOME=<workdir>/home``, ``TMPDIR``, ``LANG``,
  ``CI=true`` and npm settings (cache, user and global config inside the work dir, the registry, no audit,
  no fund, no update notifier, optional offline). No variable of the calling process is inherited, so no
  token of any Block (``GITHUB_TOKEN``, ``NETLIFY_AUTH_TOKEN``, ``POMBOLT_*``, AWS keys) reaches the build;
- it has a time limit (the whole sandbox is killed) and an output cap (the log is read as it is written;
  passing the cap kills the build);
- ``npm ci`` runs when a lockfile exists, ``npm install`` otherwise (skipped when the project declares no
  dependency at all), then ``npm run build``;
- the output folder is the project's setting (``"pombolt": {"outputDir": ...}`` in ``package.json``) or the
  first of :data:`~tasks._build.output.OUTPUT_DIRS` that exists; it must be a real folder inside the project
  (not a symlink out of it), and its files pass the same path rules as generated files.

- when Pom-Bolt runs as root, the build (bwrap itself) runs as an unprivileged user (``nobody``, uid 65534,
  no supplementary groups) in a work dir it owns inside a root-owned ``0711`` folder of the system temp dir.
  Without the sandbox (``off``, local CLI only) that uid, the environment, the work dir, the time limit and
  the output cap are all the isolation there is.

A failure raises :class:`~core.errors.BuildFailed` carrying the last 60 lines of the build log; a limit of
the sandbox that stopped the build is named in the message.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from core.errors import BuildFailed, ConfigError
from core.files import GeneratedFile
from core.settings import BuildSettings, Limits, get_settings
from tasks._build.env import DEFAULT_PATH, build_env, hand_over, work_parent
from tasks._build.log import TAIL_LINES, BuildLog
from tasks._build.output import collect_output, output_dir
from tasks._build.project import Step, build_script, plan_steps, project_npmrc, read_package
from tasks._build.sandbox import Sandbox, choose_sandbox, probe, switches_user
from tasks._build.step import Run, Stopped, run_step

__all__ = ["BuildOutput", "run_build"]


class BuildOutput(BaseModel):
    """What a successful build produced."""

    output_dir: str = Field(description="The output folder, relative to the project root.")
    files: list[GeneratedFile] = Field(description="The output folder's files, validated, sorted by path.")
    steps: list[str] = Field(description="The commands that ran, e.g. ['npm ci', 'npm run build'].")
    seconds: float
    log_bytes: int


def _require(tool: str, path: str) -> str:
    """The path of ``tool`` on ``path``; a :class:`~core.errors.ConfigError` when it is not installed."""
    found = shutil.which(tool, path=path)
    if found is None:
        raise ConfigError(
            f"{tool} is not installed (not found on PATH), but this project has a build script in package.json; "
            "install Node.js 18 or newer with npm (e.g. 'apt-get install nodejs npm'), or generate a project "
            "without a build script"
        )
    return found


def run_build(
    project: Path,
    *,
    timeout: float,
    max_log_bytes: int = 5 * 1024 * 1024,
    limits: Limits | None = None,
    offline: bool = False,
    path: str | None = None,
    workdir: Path | None = None,
    tenant_id: str | None = None,
    sandbox: BuildSettings | None = None,
) -> BuildOutput:
    """Build a project folder with npm in a sandboxed copy and return the output folder's files.

    Args:
        project: The project source (left untouched; it is copied into the work dir).
        timeout: Seconds for install plus build; the sandbox is killed after.
        max_log_bytes: Most bytes of output the build may print; more kills it.
        limits: Bounds on the output files (count, sizes); default ``Limits()``.
        offline: Forbid npm from reaching the registry (install then has no network at all).
        path: ``PATH`` to find node, npm, bwrap and prlimit on; default the calling process's.
        workdir: Parent folder of the temporary work dir; default the system temp folder. Ignored when
            Pom-Bolt runs as root (builds then live in a root-owned folder of the system temp dir).
        tenant_id: Whose build this is. Only the local CLI tenant ``local`` may build without the sandbox
            (``POMBOLT_BUILD_SANDBOX=off``); None counts as an API tenant.
        sandbox: The sandbox settings; default ``get_settings().build``.

    Returns:
        The output folder, its files and what ran.

    Raises:
        ConfigError: node, npm, bwrap or prlimit is not installed, or bwrap cannot sandbox on this machine.
        BuildFailed: A step failed, timed out, printed too much or hit a limit of the sandbox (with the last
            60 log lines), or the output folder is missing, empty, a symlink or breaks a path rule.
    """
    started = time.monotonic()
    settings = sandbox if sandbox is not None else get_settings().build
    tool_path = path if path is not None else os.environ.get("PATH", DEFAULT_PATH)
    npm, box = _toolchain(settings, tenant_id, tool_path)
    work = Path(tempfile.mkdtemp(prefix="pombolt-build-", dir=work_parent(workdir)))
    try:
        src, package, env, network = _prepare(project, work, box, settings, offline=offline, tool_path=tool_path)
        log = BuildLog(max_log_bytes)
        run = Run(work, src, env, npm, log, started + timeout, box, network, settings.registry)
        steps = plan_steps(src, package, scripts=settings.lifecycle_scripts)
        _run_steps(run, steps, timeout, settings)
        out_name = output_dir(src, package)
        files = collect_output(src, out_name, limits or Limits())
        return BuildOutput(
            output_dir=out_name,
            files=files,
            steps=[step.label for step in steps],
            seconds=round(time.monotonic() - started, 3),
            log_bytes=log.size,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _toolchain(settings: BuildSettings, tenant_id: str | None, tool_path: str) -> tuple[str, Sandbox | None]:
    """The npm command on ``tool_path`` (node must be there too) and the sandbox the build must run in."""
    node = _require("node", tool_path)
    npm = _require("npm", tool_path)
    return npm, choose_sandbox(settings, tenant_id, search_path=tool_path, node=node, npm=npm)


def _prepare(
    project: Path, work: Path, box: Sandbox | None, settings: BuildSettings, *, offline: bool, tool_path: str
) -> tuple[Path, dict[str, Any], dict[str, str], bool]:
    """Copy the project into the work dir and make the build's environment; hand the work dir over and probe
    the sandbox.

    Returns:
        The copied source, its ``package.json``, the build's environment and whether install has network.

    Raises:
        BuildFailed: ``package.json`` does not parse or has no ``build`` script.
        ConfigError: bwrap cannot make the sandbox here.
    """
    src = work / "src"
    shutil.copytree(project, src, symlinks=True)
    package = read_package(src)
    if build_script(json.dumps(package).encode()) is None:
        raise BuildFailed("package.json has no 'build' script; nothing to build")
    npmrc = project_npmrc(src)
    network = box is not None and settings.install_network and not offline
    env = build_env(
        work,
        path=box.path if box is not None else tool_path,
        offline=offline or (box is not None and not network),
        registry=settings.registry,
        ignore_scripts=not settings.lifecycle_scripts,
    )
    env.update(npmrc)
    if switches_user():
        hand_over(work)
    if box is not None:
        probe(box, work)
    return src, package, env, network


def _run_steps(run: Run, steps: list[Step], timeout: float, settings: BuildSettings) -> None:
    """Run the steps in order; the first that stops ends the build with :class:`~core.errors.BuildFailed`."""
    try:
        for step in steps:
            run_step(run, step)
    except Stopped as stop:
        raise BuildFailed(_failure(stop, timeout, run.log, settings)) from None


def _failure(stop: Stopped, timeout: float, log: BuildLog, settings: BuildSettings) -> str:
    """The message of a stopped build: what stopped it, the hint, then the last lines of its log."""
    if stop.why == "time":
        head = (
            f"the build did not finish within {timeout:g} s and was stopped; make it faster or raise "
            "POMBOLT_TIMEOUT_TASK_BUILD"
        )
    elif stop.why == "output":
        head = f"the build printed more than {log.cap} bytes and was stopped; make it quieter"
    elif stop.why == "memory":
        head = (
            f"'{stop.step}' used more than {settings.memory_mb} MiB of memory ({stop.seen // (1024 * 1024)} MiB "
            "seen) and was stopped by the build sandbox; make it use less or raise POMBOLT_BUILD_MEMORY_MB"
        )
    elif stop.why == "disk":
        head = (
            f"'{stop.step}' wrote more than {settings.max_disk_bytes} bytes into its work dir "
            f"({stop.seen} seen) and was stopped by the build sandbox; raise POMBOLT_BUILD_MAX_DISK_BYTES"
        )
    else:
        head = f"'{stop.step}' failed ({stop.why}); fix the project so it builds"
    if stop.hint:
        head = f"{head} — {stop.hint}"
    return f"{head}. Last {TAIL_LINES} lines of the build log:\n{log.text()}"
