"""Generated files and the path rules every one of them must pass (DESIGN §6).

Generated output is untrusted. Each rule is a named check; the first violation raises
:class:`~core.errors.PathRuleViolation` naming the path and the rule.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from pathlib import PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.errors import PathRuleViolation
from core.settings import Limits

FileMode = Literal["100644", "100755"]


class GeneratedFile(BaseModel):
    """One file of a project: a relative POSIX path, exact bytes, and a Git file mode."""

    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    path: str = Field(description="Relative POSIX path inside the project.")
    content: bytes = Field(description="Exact bytes of the file.")
    mode: FileMode = Field("100644", description="Git file mode: regular or executable.")

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the content."""
        return hashlib.sha256(self.content).hexdigest()

    @property
    def size(self) -> int:
        """Size of the content in bytes."""
        return len(self.content)

    @classmethod
    def text(cls, path: str, content: str, mode: FileMode = "100644") -> GeneratedFile:
        """Build a UTF-8 text file."""
        return cls(path=path, content=content.encode("utf-8"), mode=mode)


def _show(path: str) -> str:
    """Return a printable form of a path (control and other unprintable characters escaped)."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in path)


# --- the rules, one function each; each returns an explanation when the path breaks it -------------
def rule_not_empty(path: str) -> str | None:
    """A path must not be empty."""
    return "the path is empty" if not path.strip() else None


def rule_no_control_characters(path: str) -> str | None:
    """No NUL or other control characters."""
    bad = [c for c in path if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]
    return f"contains control character {bad[0]!r}" if bad else None


def rule_relative(path: str) -> str | None:
    """Relative paths only (no leading '/', no drive letter, no '~')."""
    if path.startswith(("/", "\\", "~")) or (len(path) > 1 and path[1] == ":"):
        return "absolute paths are not allowed"
    return None


def rule_posix_separators(path: str) -> str | None:
    """Forward slashes only."""
    return "use '/' as separator, not '\\'" if "\\" in path else None


def rule_no_parent_segments(path: str) -> str | None:
    """No '..', '.' or empty segments."""
    parts = path.split("/")
    if any(p == ".." for p in parts):
        return "'..' segments would escape the project"
    if any(p in ("", ".") for p in parts):
        return "empty or '.' segments are not allowed"
    return None


def rule_no_git_dir(path: str) -> str | None:
    """Nothing inside a '.git' folder (nor its 8.3 alias 'git~1'), at any depth or in any case (git refuses both)."""
    return "files under .git/ are not allowed" if {".git", "git~1"} & set(path.lower().split("/")) else None


#: Characters that look like '/', '\\', '.' or ':' (or become them under NFKC) but are not.
_LOOKALIKES = frozenset("\u2215\u2044\u29f8\u2571\u27cb\u29f9\u3033")
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def rule_no_lookalike_separators(path: str) -> str | None:
    """No characters that look like (or normalise to) a separator, a dot or a colon."""
    for c in path:
        if c in _LOOKALIKES or (c not in "/\\.:" and set(unicodedata.normalize("NFKC", c)) & set("/\\.:")):
            return f"contains {c!r} (U+{ord(c):04X}), which looks like a path separator or dot; rename the file"
    return None


def rule_no_percent_escapes(path: str) -> str | None:
    """No percent-escapes ('%2e%2e/' would become '../' wherever the path is URL-decoded)."""
    found = _PERCENT_ESCAPE.search(path)
    if found:
        return f"contains the percent-escape {found.group()!r}, which URL-decoding would change; rename the file"
    return None


def rule_no_trailing_dot_or_space(path: str) -> str | None:
    """No segment ending in '.' or ' ' (Windows drops them: 'a.' is 'a', and '.git.' is '.git')."""
    for part in path.split("/"):
        if part.endswith((".", " ")):
            return f"segment {part!r} ends with a dot or a space, which Windows and git strip; rename it"
    return None


def rule_no_workflows(path: str) -> str | None:
    """No GitHub Actions workflows (they would run with the repository's secrets)."""
    low = path.lower()
    if low.startswith(".github/workflows/"):
        return "generated GitHub workflows are refused unless the project allows them"
    return None


def rule_max_length(limit: int) -> Callable[[str], str | None]:
    """Build the rule that bounds a path's length."""

    def rule_path_length(path: str) -> str | None:
        return f"longer than {limit} characters" if len(path) > limit else None

    return rule_path_length


PathRule = Callable[[str], str | None]

_BASE_RULES: tuple[tuple[str, PathRule], ...] = (
    ("not-empty", rule_not_empty),
    ("no-control-characters", rule_no_control_characters),
    ("relative", rule_relative),
    ("posix-separators", rule_posix_separators),
    ("no-parent-segments", rule_no_parent_segments),
    ("no-git-dir", rule_no_git_dir),
    ("no-lookalike-separators", rule_no_lookalike_separators),
    ("no-percent-escapes", rule_no_percent_escapes),
    ("no-trailing-dot-or-space", rule_no_trailing_dot_or_space),
)


def check_path(path: str, *, limits: Limits | None = None, allow_workflows: bool = False) -> str:
    """Check one path against every rule and return it normalised.

    Args:
        path: The path as the generator gave it.
        limits: Size limits (defaults from settings).
        allow_workflows: Whether ``.github/workflows/`` files are allowed.

    Returns:
        The path, NFC-normalised.

    Raises:
        PathRuleViolation: On the first rule the path breaks.
    """
    limits = limits or Limits()
    rules: list[tuple[str, PathRule]] = [*_BASE_RULES, ("max-length", rule_max_length(limits.max_path_chars))]
    if not allow_workflows:
        rules.append(("no-workflows", rule_no_workflows))
    for name, rule in rules:
        problem = rule(path)
        if problem:
            raise PathRuleViolation(_show(path), name, problem)
    normalised = unicodedata.normalize("NFC", path)
    assert PurePosixPath(normalised).as_posix() == normalised  # guaranteed by the rules above
    return normalised


def validate_files(
    files: Sequence[GeneratedFile] | Iterable[GeneratedFile],
    *,
    limits: Limits | None = None,
    allow_workflows: bool = False,
) -> list[GeneratedFile]:
    """Validate a whole generation: every path, duplicates, file prefixes, count and sizes.

    Args:
        files: The generated files.
        limits: Bounds on count and sizes.
        allow_workflows: Whether ``.github/workflows/`` files are allowed.

    Returns:
        The files, sorted by path, with normalised paths.

    Raises:
        PathRuleViolation: Naming the first offending path and the rule.
    """
    limits = limits or Limits()
    out: dict[str, GeneratedFile] = {}
    total = 0
    for count, f in enumerate(files, start=1):
        if count > limits.max_files:
            raise PathRuleViolation(_show(f.path), "max-files", f"more than {limits.max_files} files")
        path = check_path(f.path, limits=limits, allow_workflows=allow_workflows)
        if f.size > limits.max_file_bytes:
            raise PathRuleViolation(
                _show(path), "max-file-size", f"{f.size} bytes is over the {limits.max_file_bytes}-byte limit"
            )
        total += f.size
        if total > limits.max_total_bytes:
            raise PathRuleViolation(
                _show(path), "max-total-size", f"the project passes the {limits.max_total_bytes}-byte limit"
            )
        key = path.casefold()
        if key in out:
            raise PathRuleViolation(_show(path), "unique", "two files share this path (ignoring case)")
        out[key] = f if path == f.path else f.model_copy(update={"path": path})
    # keys of ``out`` are case-folded, so 'A' and 'a/b' clash as they would on a case-insensitive disk
    for key, f in out.items():
        for parent in list(PurePosixPath(key).parents)[:-1]:
            if parent.as_posix() in out:
                folder = out[parent.as_posix()].path
                raise PathRuleViolation(_show(f.path), "file-not-folder", f"{folder} is a file and a folder")
    return sorted(out.values(), key=lambda f: f.path)


def untrusted_file(path: str, content: bytes, mode: str = "100644") -> GeneratedFile:
    """Build a :class:`GeneratedFile` from untrusted parts (e.g. an LLM or an archive entry).

    Raises:
        PathRuleViolation: For symlinks, submodules or unknown modes (rule ``no-symlinks`` or
            ``file-mode``), before any path rule runs.
    """
    if mode in ("120000", "symlink"):
        raise PathRuleViolation(_show(path), "no-symlinks", "symbolic links are not allowed")
    if mode not in ("100644", "100755"):
        raise PathRuleViolation(_show(path), "file-mode", f"mode {mode!r} is not a regular file mode")
    return GeneratedFile(path=path, content=content, mode="100755" if mode == "100755" else "100644")
