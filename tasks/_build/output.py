"""A build's output folder: which one it is, that it is a real folder of the project, and its files."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.errors import BuildFailed, PathRuleViolation
from core.files import GeneratedFile, check_path, untrusted_file, validate_files
from core.settings import Limits

__all__ = ["OUTPUT_DIRS", "collect_output", "output_dir"]

#: Output folders tried in order when the project does not name one.
OUTPUT_DIRS: tuple[str, ...] = ("dist", "build", "out", ".output/public", "public")


def output_dir(project: Path, package: Mapping[str, Any]) -> str:
    """The build's output folder, relative to the project: ``pombolt.outputDir`` or the first of
    :data:`OUTPUT_DIRS` that exists; :class:`~core.errors.BuildFailed` when it is unsafe or missing."""
    settings = package.get("pombolt")
    configured = settings.get("outputDir") if isinstance(settings, dict) else None
    if isinstance(configured, str) and configured.strip():
        try:
            name = check_path(configured.strip().strip("/"), allow_workflows=True)
        except PathRuleViolation as exc:
            raise BuildFailed(f"pombolt.outputDir in package.json is unsafe: {exc.message}") from exc
        if not (project / name).is_dir():
            raise BuildFailed(f"the build did not create {name}/ (pombolt.outputDir in package.json)")
        return _inside(project, name)
    for name in OUTPUT_DIRS:
        if (project / name).is_dir():
            return _inside(project, name)
    raise BuildFailed(
        f"the build produced none of the output folders {', '.join(OUTPUT_DIRS)}; "
        'set "pombolt": {"outputDir": "..."} in package.json'
    )


def _inside(project: Path, name: str) -> str:
    """``name`` when it is a real folder of the project: no part of it may be a symlink (out of the work dir)."""
    current = project
    for part in Path(name).parts:
        current = current / part
        if current.is_symlink():
            raise BuildFailed(
                f"the build output folder {name}/ is (or goes through) a symlink ({current.relative_to(project)}); "
                "output must be real files inside the project"
            )
    return name


def _collect(root: Path, limits: Limits) -> list[GeneratedFile]:
    """Every file below ``root``, validated like generated files (no symlinks, bounded sizes)."""
    files: list[GeneratedFile] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            untrusted_file(rel, b"", "120000")  # raises PathRuleViolation(no-symlinks)
        if path.is_file():
            if path.stat().st_size > limits.max_file_bytes:
                raise BuildFailed(
                    f"build output {root.name}/{rel} is larger than {limits.max_file_bytes} bytes (max-file-bytes)"
                )
            mode = "100755" if os.access(path, os.X_OK) else "100644"
            files.append(untrusted_file(rel, path.read_bytes(), mode))
    if not files:
        raise BuildFailed(f"the build output folder {root.name}/ is empty; check the build script")
    return validate_files(files, limits=limits, allow_workflows=True)


def collect_output(src: Path, out_name: str, limits: Limits) -> list[GeneratedFile]:
    """The output folder's files; :class:`~core.errors.BuildFailed` when one breaks a path rule or a limit."""
    try:
        return _collect(src / out_name, limits)
    except PathRuleViolation as exc:
        raise BuildFailed(f"build output {out_name}/ breaks a path rule: {exc.message}") from exc
