"""A build's environment and work dir: the allow-listed variables, where the work dir lives, who owns it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from core.errors import BuildFailed
from tasks._build.sandbox import BUILD_GID, BUILD_UID, find_bwrap, switches_user

__all__ = ["DEFAULT_PATH", "SANDBOX_GID", "SANDBOX_UID", "build_env", "hand_over", "sandboxed", "work_parent"]

#: ``PATH`` when the calling process has none.
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def build_env(
    workdir: Path,
    *,
    path: str | None = None,
    offline: bool = False,
    registry: str | None = None,
    ignore_scripts: bool = False,
) -> dict[str, str]:
    """The whole environment of a build: an allow-list, nothing inherited but ``PATH``.

    Args:
        workdir: The build's work dir; HOME, TMPDIR and npm's cache and config live in it.
        path: ``PATH`` for the build; default the calling process's.
        offline: Set ``npm_config_offline=true`` (a build that must not reach the registry).
        registry: The npm registry (``npm_config_registry``); default npm's own.
        ignore_scripts: Set ``npm_config_ignore_scripts=true`` (no lifecycle scripts).
    """
    home, tmp = workdir / "home", workdir / "tmp"
    for folder in (home, tmp):
        folder.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": path if path is not None else os.environ.get("PATH", DEFAULT_PATH),
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
        "npm_config_fetch_retries": "2",
        "npm_config_fetch_retry_mintimeout": "2000",
        "npm_config_fetch_retry_maxtimeout": "10000",
    }
    if registry is not None:
        env["npm_config_registry"] = registry
    if ignore_scripts:
        env["npm_config_ignore_scripts"] = "true"
    return env


#: The unprivileged user builds run as when Pom-Bolt runs as root.
SANDBOX_UID, SANDBOX_GID = BUILD_UID, BUILD_GID


def sandboxed() -> bool:
    """Whether a build cannot touch the worker's files: it runs in the bubblewrap sandbox (bwrap is
    installed; it is required unless the local CLI opted out) or as the build user (Pom-Bolt runs as root)."""
    return switches_user() or find_bwrap() is not None


def _sandbox_parent() -> Path:
    """A root-owned, traversable but unlistable folder holding one build-user-owned folder per build."""
    parent = Path(tempfile.gettempdir()) / "pombolt-builds"
    parent.mkdir(mode=0o711, exist_ok=True)
    if parent.is_symlink() or parent.stat().st_uid != 0:
        raise BuildFailed(f"{parent} is not a root-owned folder; remove it and build again")
    parent.chmod(0o711)
    return parent


def work_parent(workdir: Path | None) -> Path:
    """Where a build's work dir is made: the root-owned build folder as root, else ``workdir`` or the temp dir."""
    if switches_user():
        return _sandbox_parent()  # the build user can reach only its own folder in here
    if workdir is None:
        return Path(tempfile.gettempdir())
    workdir.mkdir(parents=True, exist_ok=True)
    return workdir


def hand_over(work: Path) -> None:
    """Give the work dir to the build user (owner-only access)."""
    for root, dirs, files in os.walk(work):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), SANDBOX_UID, SANDBOX_GID)
    os.chown(work, SANDBOX_UID, SANDBOX_GID)
    work.chmod(0o700)
