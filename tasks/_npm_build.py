"""npm builds of generated projects, in an isolated work dir with an allow-listed environment (DESIGN §6).

A project needs a build when its ``package.json`` has a ``build`` script. The build runs generated code, so:

- it runs in a fresh work dir (the source is copied there; nothing else of ours is reachable by path);
- its environment is built from nothing: ``PATH``, ``HOME=<workdir>/home``, ``TMPDIR``, ``LANG``,
  ``CI=true`` and npm settings (cache, user and global config inside the work dir, no audit, no fund, no
  update notifier, optional offline). No variable of the calling process is inherited, so no token of any
  Block (``GITHUB_TOKEN``, ``NETLIFY_AUTH_TOKEN``, ``POMBOLT_*``, AWS keys) reaches the build;
- it has a time limit (the whole process group is killed) and an output cap (the log is read as it is
  written; passing the cap kills the build);
- ``npm ci`` runs when a lockfile exists, ``npm install`` otherwise (skipped when the project declares no
  dependency at all), then ``npm run build``;
- the output folder is the project's setting (``"pombolt": {"outputDir": ...}`` in ``package.json``) or the
  first of :data:`OUTPUT_DIRS` that exists, and its files pass the same path rules as generated files.

- when Pom-Bolt runs as root, the build runs as an unprivileged user (``nobody``, uid 65534, no
  supplementary groups) in a work dir it owns inside a root-owned ``0711`` folder of the system temp dir.
  It then cannot read the worker's ``/proc/<pid>/environ`` (tokens a worker was started with), cannot read
  the data dir (``0700``: state DB, Prefect's Block store) and cannot write outside its own folder. When
  Pom-Bolt does not run as root there is no other uid to switch to: the build runs as the worker's user,
  with only the environment, work-dir, time and output limits above (run workers as root or in a
  container to get the uid boundary).

A failure raises :class:`~core.errors.BuildFailed` carrying the last 60 lines of the build log.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, Field

from core.errors import BuildFailed, ConfigError, PathRuleViolation
from core.files import GeneratedFile, check_path, untrusted_file, validate_files
from core.redaction import redact
from core.settings import Limits

__all__ = [
    "LOCKFILES",
    "OUTPUT_DIRS",
    "TAIL_LINES",
    "BuildOutput",
    "build_env",
    "build_script",
    "run_build",
]

#: Output folders tried in order when the project does not name one.
OUTPUT_DIRS: tuple[str, ...] = ("dist", "build", "out", ".output/public", "public")
#: Lockfiles that make the install step ``npm ci``.
LOCKFILES: tuple[str, ...] = ("package-lock.json", "npm-shrinkwrap.json")
#: Lines of the build log a failure carries.
TAIL_LINES = 60
_MAX_LINE = 64 * 1024
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


class BuildOutput(BaseModel):
    """What a successful build produced."""

    output_dir: str = Field(description="The output folder, relative to the project root.")
    files: list[GeneratedFile] = Field(description="The output folder's files, validated, sorted by path.")
    steps: list[str] = Field(description="The commands that ran, e.g. ['npm ci', 'npm run build'].")
    seconds: float
    log_bytes: int


def build_script(package_json: bytes | None) -> str | None:
    """The ``build`` script of a ``package.json``, or None when there is none (or it does not parse)."""
    if package_json is None:
        return None
    try:
        data = json.loads(package_json)
    except ValueError:
        return None
    scripts = data.get("scripts") if isinstance(data, dict) else None
    script = scripts.get("build") if isinstance(scripts, dict) else None
    return script if isinstance(script, str) and script.strip() else None


def build_env(workdir: Path, *, path: str | None = None, offline: bool = False) -> dict[str, str]:
    """The whole environment of a build: an allow-list, nothing inherited but ``PATH``.

    Args:
        workdir: The build's work dir; HOME, TMPDIR and npm's cache and config live in it.
        path: ``PATH`` for the build; default the calling process's.
        offline: Set ``npm_config_offline=true`` (a build that must not reach the registry).
    """
    home, tmp = workdir / "home", workdir / "tmp"
    for folder in (home, tmp):
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": path if path is not None else os.environ.get("PATH", _DEFAULT_PATH),
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "CI": "true",
        "npm_config_cache": str(workdir / "npm-cache"),
        "npm_config_userconfig": str(home / ".npmrc"),
        "npm_config_globalconfig": str(home / "npmrc-global"),
        "npm_config_offline": "true" if offline else "false",
        "npm_config_audit": "false",
        "npm_config_fund": "false",
        "npm_config_update_notifier": "false",
        "npm_config_progress": "false",
        "npm_config_loglevel": "warn",
    }


#: The unprivileged user builds run as when Pom-Bolt runs as root.
SANDBOX_UID = SANDBOX_GID = 65534


def sandboxed() -> bool:
    """Whether builds switch to the unprivileged build user (only possible as root)."""
    return os.geteuid() == 0 and os.environ.get("POMBOLT_BUILD_SANDBOX", "1") != "0"


def _sandbox_parent() -> Path:
    """A root-owned, traversable but unlistable folder holding one build-user-owned folder per build."""
    parent = Path(tempfile.gettempdir()) / "pombolt-builds"
    parent.mkdir(mode=0o711, exist_ok=True)
    if parent.is_symlink() or parent.stat().st_uid != 0:
        raise BuildFailed(f"{parent} is not a root-owned folder; remove it and build again")
    parent.chmod(0o711)
    return parent


def work_parent(workdir: Path | None) -> Path:
    """Where a build's work dir is made: the sandbox folder when sandboxed, else ``workdir`` or the temp dir."""
    if sandboxed():
        return _sandbox_parent()  # the build user can reach only its own folder in here
    if workdir is None:
        return Path(tempfile.gettempdir())
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def _hand_over(work: Path) -> None:
    """Give the work dir to the build user (owner-only access)."""
    for root, dirs, files in os.walk(work):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), SANDBOX_UID, SANDBOX_GID)
    os.chown(work, SANDBOX_UID, SANDBOX_GID)
    work.chmod(0o700)


def _require(tool: str, env: Mapping[str, str]) -> str:
    found = shutil.which(tool, path=env["PATH"])
    if found is None:
        raise ConfigError(
            f"{tool} is not installed (not found on PATH), but this project has a build script in package.json; "
            "install Node.js 18 or newer with npm (e.g. 'apt-get install nodejs npm'), or generate a project "
            "without a build script"
        )
    return found


class _Log:
    """Reads a build's combined output: counts bytes, keeps the last lines, stops at a cap."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.size = 0
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self.over = False

    def add(self, text: str) -> None:
        self.tail.append(text)

    def pump(self, stream: IO[bytes], proc: subprocess.Popen[bytes]) -> None:
        for raw in iter(lambda: stream.readline(_MAX_LINE), b""):
            self.size += len(raw)
            self.tail.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
            if self.size > self.cap and not self.over:
                self.over = True
                _kill_group(proc)

    def text(self) -> str:
        return redact("\n".join(self.tail))


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _run_step(argv: Sequence[str], cwd: Path, env: Mapping[str, str], log: _Log, deadline: float, label: str) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _Stop("time")
    log.add(f"$ {label}")
    drop: dict[str, Any] = (
        {"user": SANDBOX_UID, "group": SANDBOX_GID, "extra_groups": [], "umask": 0o077} if sandboxed() else {}
    )
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        **drop,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so a kill reaches every child
    )
    timer = threading.Timer(remaining, _kill_group, args=(proc,))
    timer.start()
    try:
        assert proc.stdout is not None
        log.pump(proc.stdout, proc)
        code = proc.wait()
    finally:
        timer.cancel()
        _kill_group(proc)  # leftovers (a daemon a build script started)
        if proc.stdout is not None:
            proc.stdout.close()
    if log.over:
        raise _Stop("output")
    if time.monotonic() >= deadline:
        raise _Stop("time")
    if code != 0:
        raise _Stop(f"exit {code}", label)


class _Stop(Exception):
    def __init__(self, why: str, step: str = "") -> None:
        super().__init__(why)
        self.why, self.step = why, step


def _read_package(project: Path) -> dict[str, Any]:
    try:
        data = json.loads((project / "package.json").read_bytes())
    except (OSError, ValueError) as exc:
        raise BuildFailed(f"package.json cannot be read as JSON ({exc}); fix package.json") from exc
    if not isinstance(data, dict):
        raise BuildFailed("package.json is not a JSON object; fix package.json")
    return data


def _output_dir(project: Path, package: Mapping[str, Any]) -> str:
    settings = package.get("pombolt")
    configured = settings.get("outputDir") if isinstance(settings, dict) else None
    if isinstance(configured, str) and configured.strip():
        try:
            name = check_path(configured.strip().strip("/"), allow_workflows=True)
        except PathRuleViolation as exc:
            raise BuildFailed(f"pombolt.outputDir in package.json is unsafe: {exc.message}") from exc
        if not (project / name).is_dir():
            raise BuildFailed(f"the build did not create {name}/ (pombolt.outputDir in package.json)")
        return name
    for name in OUTPUT_DIRS:
        if (project / name).is_dir():
            return name
    raise BuildFailed(
        f"the build produced none of the output folders {', '.join(OUTPUT_DIRS)}; "
        'set "pombolt": {"outputDir": "..."} in package.json'
    )


def _collect(root: Path, limits: Limits) -> list[GeneratedFile]:
    files: list[GeneratedFile] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            untrusted_file(rel, b"", "120000")  # raises PathRuleViolation(no-symlinks)
        if path.is_file():
            mode = "100755" if os.access(path, os.X_OK) else "100644"
            files.append(untrusted_file(rel, path.read_bytes(), mode))
    if not files:
        raise BuildFailed(f"the build output folder {root.name}/ is empty; check the build script")
    return validate_files(files, limits=limits, allow_workflows=True)


def _steps(npm: str, src: Path, package: Mapping[str, Any]) -> list[list[str]]:
    """``npm ci`` with a lockfile (``npm install`` with dependencies but none), then ``npm run build``."""
    steps: list[list[str]] = []
    if any((src / name).is_file() for name in LOCKFILES):
        steps.append([npm, "ci"])
    elif package.get("dependencies") or package.get("devDependencies"):
        steps.append([npm, "install"])
    steps.append([npm, "run", "build"])
    return steps


def _run_steps(
    steps: list[list[str]], src: Path, env: Mapping[str, str], log: _Log, *, started: float, timeout: float
) -> list[str]:
    """Run the steps in order within one deadline; return their labels (``npm ci``, ``npm run build``)."""
    labels = [" ".join(["npm", *step[1:]]) for step in steps]
    try:
        for argv, label in zip(steps, labels, strict=True):
            _run_step(argv, src, env, log, started + timeout, label)
    except _Stop as stop:
        raise BuildFailed(_failure(stop, timeout, log.cap, log)) from None
    return labels


def _collect_output(src: Path, out_name: str, limits: Limits) -> list[GeneratedFile]:
    try:
        return _collect(src / out_name, limits)
    except PathRuleViolation as exc:
        raise BuildFailed(f"build output {out_name}/ breaks a path rule: {exc.message}") from exc


def run_build(
    project: Path,
    *,
    timeout: float,
    max_log_bytes: int = 5 * 1024 * 1024,
    limits: Limits | None = None,
    offline: bool = False,
    path: str | None = None,
    workdir: Path | None = None,
) -> BuildOutput:
    """Build a project folder with npm in an isolated copy and return the output folder's files.

    Args:
        project: The project source (left untouched; it is copied into the work dir).
        timeout: Seconds for install plus build; the process group is killed after.
        max_log_bytes: Most bytes of output the build may print; more kills it.
        limits: Bounds on the output files (count, sizes); default ``Limits()``.
        offline: Forbid npm from reaching the registry.
        path: ``PATH`` for the build; default the calling process's.
        workdir: Parent folder of the temporary work dir; default the system temp folder. Ignored when
            builds are sandboxed (they then live in a root-owned folder of the system temp dir).

    Returns:
        The output folder, its files and what ran.

    Raises:
        ConfigError: node or npm is not installed.
        BuildFailed: A step failed, timed out or printed too much (with the last 60 log lines), or the
            output folder is missing, empty or breaks a path rule.
    """
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="pombolt-build-", dir=work_parent(workdir)))
    try:
        src = work / "src"
        shutil.copytree(project, src, symlinks=True)
        env = build_env(work, path=path, offline=offline)
        _require("node", env)
        npm = _require("npm", env)
        package = _read_package(src)
        if build_script(json.dumps(package).encode()) is None:
            raise BuildFailed("package.json has no 'build' script; nothing to build")
        if sandboxed():
            _hand_over(work)
        log = _Log(max_log_bytes)
        labels = _run_steps(_steps(npm, src, package), src, env, log, started=started, timeout=timeout)
        out_name = _output_dir(src, package)
        files = _collect_output(src, out_name, limits or Limits())
        return BuildOutput(
            output_dir=out_name,
            files=files,
            steps=labels,
            seconds=round(time.monotonic() - started, 3),
            log_bytes=log.size,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _failure(stop: _Stop, timeout: float, cap: int, log: _Log) -> str:
    if stop.why == "time":
        head = (
            f"the build did not finish within {timeout:g} s and was stopped; make it faster or raise "
            "POMBOLT_TIMEOUT_TASK_BUILD"
        )
    elif stop.why == "output":
        head = f"the build printed more than {cap} bytes and was stopped; make it quieter"
    else:
        head = f"'{stop.step}' failed ({stop.why}); fix the project so it builds"
    return f"{head}. Last {TAIL_LINES} lines of the build log:\n{log.text()}"
