"""The project being built: its ``package.json``, its own ``.npmrc`` and the npm steps it needs."""

from __future__ import annotations

import configparser
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import BuildFailed

__all__ = ["LOCKFILES", "NPMRC_KEYS", "Step", "build_script", "plan_steps", "project_npmrc", "read_package"]

#: Lockfiles that make the install step ``npm ci``.
LOCKFILES: tuple[str, ...] = ("package-lock.json", "npm-shrinkwrap.json")
#: Keys of a project's own ``.npmrc`` that are carried over (as ``npm_config_*``); the file itself is removed.
NPMRC_KEYS: frozenset[str] = frozenset({"legacy-peer-deps", "strict-peer-deps", "engine-strict"})


@dataclass(frozen=True)
class Step:
    """One npm command of a build."""

    label: str  # what BuildOutput.steps and errors call it: 'npm ci', 'npm run build'
    args: list[str]  # npm's arguments
    install: bool  # a dependency install (may reach the registry)


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


def read_package(project: Path) -> dict[str, Any]:
    """The project's ``package.json`` as a JSON object; :class:`~core.errors.BuildFailed` when it is not one."""
    try:
        data = json.loads((project / "package.json").read_bytes())
    except (OSError, ValueError) as exc:
        raise BuildFailed(f"package.json cannot be read as JSON ({exc}); fix package.json") from exc
    if not isinstance(data, dict):
        raise BuildFailed("package.json is not a JSON object; fix package.json")
    return data


def project_npmrc(src: Path) -> dict[str, str]:
    """Remove the project's own ``.npmrc`` (it could name another registry, shell or git binary) and return
    the harmless keys of :data:`NPMRC_KEYS` it set, as ``npm_config_*`` variables."""
    path = src / ".npmrc"
    if path.is_symlink() or not path.is_file():
        with contextlib.suppress(OSError):
            if path.is_symlink():
                path.unlink()
        return {}
    text = path.read_text("utf-8", "replace")
    path.unlink()
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    with contextlib.suppress(configparser.Error):
        parser.read_string("[npmrc]\n" + text)
    kept: dict[str, str] = {}
    if parser.has_section("npmrc"):
        for key, value in parser.items("npmrc"):
            if key in NPMRC_KEYS and value.strip().lower() in ("true", "false"):
                kept["npm_config_" + key.replace("-", "_")] = value.strip().lower()
    return kept


def plan_steps(src: Path, package: Mapping[str, Any], *, scripts: bool) -> list[Step]:
    """``npm ci`` with a lockfile (``npm install`` with dependencies but none), then ``npm run build``."""
    flags = [] if scripts else ["--ignore-scripts"]
    steps: list[Step] = []
    if any((src / name).is_file() for name in LOCKFILES):
        steps.append(Step("npm ci", ["ci", *flags], install=True))
    elif package.get("dependencies") or package.get("devDependencies"):
        steps.append(Step("npm install", ["install", *flags], install=True))
    steps.append(Step("npm run build", ["run", "build", *flags], install=False))
    return steps
