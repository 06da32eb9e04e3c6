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
        """Build a UTF-8 text file.

        A lone surrogate in ``content`` is kept (encoded as its three bytes), so that
        :func:`validate_files` refuses the file naming its path (rule ``no-surrogates``) instead of an
        anonymous ``UnicodeEncodeError`` here.
        """
        return cls(path=path, content=content.encode("utf-8", "surrogatepass"), mode=mode)


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


def rule_no_surrogates(path: str) -> str | None:
    """No lone UTF-16 surrogates (U+D800-U+DFFF): not characters, they cannot be written as UTF-8."""
    bad = next((c for c in path if "\ud800" <= c <= "\udfff"), None)
    if bad is None:
        return None
    return f"contains the lone UTF-16 surrogate U+{ord(bad):04X}, which is not a character and has no UTF-8 form"


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


def _folded(path: str) -> str:
    """The path as the name rules compare it: NFC (as it is stored) and case-folded (as case-insensitive
    disks and hosts see it; 'K' (U+212A KELVIN SIGN) is 'k' here, as NFC makes it 'K')."""
    return unicodedata.normalize("NFC", path).casefold()


def rule_no_git_dir(path: str) -> str | None:
    """Nothing inside a '.git' folder (nor its 8.3 alias 'git~1'), at any depth or in any case (git refuses both)."""
    return "files under .git/ are not allowed" if {".git", "git~1"} & set(_folded(path).split("/")) else None


#: Files that steer git itself, at any depth (with the 8.3 alias git itself checks for '.gitmodules').
_GIT_METADATA = {
    ".gitmodules": ".gitmodules sets submodule URLs that a recursive clone fetches",
    "gitmod~1": "GITMOD~1 is .gitmodules on Windows (its 8.3 name), which sets submodule URLs",
    ".gitattributes": ".gitattributes sets filters, diff and merge drivers and line-ending conversions",
}


def rule_no_git_metadata(path: str) -> str | None:
    """No '.gitmodules' or '.gitattributes' at any depth: they steer git itself, whatever the project allows."""
    for part in _folded(path).split("/"):
        if part in _GIT_METADATA:
            return f"{_GIT_METADATA[part]}; generated files may not steer git"
    return None


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


#: Windows device names: a file named so (with any extension, in any case) opens the device, not a file.
_RESERVED_NAME = re.compile(r"(con|prn|aux|nul|conin\$|conout\$|com[0-9\u00b9\u00b2\u00b3]|lpt[0-9\u00b9\u00b2\u00b3])")


def rule_no_reserved_names(path: str) -> str | None:
    """No Windows device names ('con', 'NUL', 'aux.txt', 'COM1.js', 'lpt9', ...) as any segment."""
    for part in path.split("/"):
        stem = re.split(r"[.:]", part.casefold(), maxsplit=1)[0].rstrip(" ")
        if _RESERVED_NAME.fullmatch(stem):
            return f"segment {part!r} is the Windows device name {stem.upper()!r}, which no Windows checkout can hold"
    return None


#: CI configuration of Git hosts and git hook managers, by folder: it runs with the repository's secrets (or,
#: for hooks, on the machine of whoever commits), so it is generated only where the project allows it.
_CI_FOLDERS = {
    ".github/workflows/": "GitHub Actions workflows",
    ".github/actions/": "GitHub Actions (local actions that workflows run)",
    ".gitea/workflows/": "Gitea Actions workflows",
    ".forgejo/workflows/": "Forgejo Actions workflows",
    ".circleci/": "CircleCI configuration",
    ".husky/": "git hooks (husky)",
}
#: The same, by file name (at any depth: a root configuration can include them from anywhere).
_CI_FILES = {
    ".gitlab-ci.yml": "GitLab CI configuration",
    ".gitlab-ci.yaml": "GitLab CI configuration",
    "bitbucket-pipelines.yml": "Bitbucket Pipelines configuration",
    "azure-pipelines.yml": "Azure Pipelines configuration",
    "lefthook.yml": "git hooks (lefthook)",
    ".lefthook.yml": "git hooks (lefthook)",
    ".pre-commit-config.yaml": "git hooks (pre-commit)",
}


def rule_no_workflows(path: str) -> str | None:
    """No CI configuration of any Git host and no git hooks (they would run with the repository's secrets)."""
    key = _folded(path)
    what = _CI_FILES.get(key.rsplit("/", 1)[-1])
    if what is None:
        what = next((w for folder, w in _CI_FOLDERS.items() if f"/{folder}" in f"/{key}"), None)
    if what is None:
        return None
    return (
        f"{what}: generated CI configuration and git hooks are refused unless the project allows them "
        "(POMBOLT_ALLOW_WORKFLOWS)"
    )


def rule_max_length(limit: int) -> Callable[[str], str | None]:
    """Build the rule that bounds a path's length."""

    def rule_path_length(path: str) -> str | None:
        return f"longer than {limit} characters" if len(path) > limit else None

    return rule_path_length


PathRule = Callable[[str], str | None]

_BASE_RULES: tuple[tuple[str, PathRule], ...] = (
    ("not-empty", rule_not_empty),
    ("no-control-characters", rule_no_control_characters),
    ("no-surrogates", rule_no_surrogates),
    ("relative", rule_relative),
    ("posix-separators", rule_posix_separators),
    ("no-parent-segments", rule_no_parent_segments),
    ("no-git-dir", rule_no_git_dir),
    ("no-lookalike-separators", rule_no_lookalike_separators),
    ("no-percent-escapes", rule_no_percent_escapes),
    ("no-trailing-dot-or-space", rule_no_trailing_dot_or_space),
    ("no-reserved-names", rule_no_reserved_names),
    ("no-git-metadata", rule_no_git_metadata),
)


def check_path(path: str, *, limits: Limits | None = None, allow_workflows: bool = False) -> str:
    """Check one path against every rule and return it normalised.

    Args:
        path: The path as the generator gave it.
        limits: Size limits (defaults from settings).
        allow_workflows: Whether CI configuration and git hooks (``.github/workflows/``, ``.gitlab-ci.yml``,
            ``.circleci/``, ``.husky/``, ...: rule ``no-workflows``) are allowed.

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


#: Extensions of files that declare themselves text (what browsers, git and the checks read as text).
TEXT_SUFFIXES = frozenset(
    ".html .htm .xhtml .css .scss .sass .less .js .mjs .cjs .jsx .ts .tsx .mts .cts .vue .svelte .json .map "
    ".webmanifest .md .markdown .txt .csv .tsv .svg .xml .yml .yaml .toml .ini .cfg .conf .env .sh .py .rb "
    ".php .sql .graphql .gql .lock".split()
)
#: A UTF-16 surrogate written with the UTF-8 three-byte pattern (CESU-8 / 'surrogatepass'): never valid UTF-8.
_ENCODED_SURROGATE = re.compile(rb"\xed[\xa0-\xbf][\x80-\xbf]")
_UTF16_BOMS = {b"\xff\xfe": "utf-16-le", b"\xfe\xff": "utf-16-be"}


def _declared_text(path: str, content: bytes) -> bool:
    """Whether a file says it is text: by its extension, or by reading as UTF-8 throughout (dotfiles,
    'LICENSE', ...), surrogates aside."""
    if PurePosixPath(path.casefold()).suffix in TEXT_SUFFIXES:
        return True
    try:
        content.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return False
    return True


def content_surrogate(path: str, content: bytes) -> str | None:
    """Why a text file's content holds a lone UTF-16 surrogate, or None.

    Text is UTF-8, or UTF-16 when it starts with a byte-order mark. A surrogate written out in UTF-8 bytes
    (what ``str.encode(..., "surrogatepass")`` makes of a model's ``"\\ud800"``), or an unpaired one in
    UTF-16, is no character: browsers show U+FFFD, git and diff tools disagree, checks fail to decode it.
    Binary files (no text extension, not UTF-8) are not read.
    """
    encoding = _UTF16_BOMS.get(content[:2])
    if encoding is not None:
        text = content[2 : len(content) - len(content) % 2].decode(encoding, "surrogatepass")  # pairs combine
        bad = next((i for i, c in enumerate(text) if "\ud800" <= c <= "\udfff"), None)
        if bad is None:
            return None
        where, code = f"UTF-16 code unit {bad}", ord(text[bad])
    else:
        found = _ENCODED_SURROGATE.search(content)
        if found is None or not _declared_text(path, content):
            return None
        where, code = f"byte {found.start()}", ord(found.group().decode("utf-8", "surrogatepass"))
    return (
        f"the text holds the UTF-16 surrogate U+{code:04X} alone at {where}, which is not a character; "
        "write the character itself (a surrogate pair is one character) or leave it out"
    )


def validate_files(
    files: Sequence[GeneratedFile] | Iterable[GeneratedFile],
    *,
    limits: Limits | None = None,
    allow_workflows: bool = False,
) -> list[GeneratedFile]:
    """Validate a whole generation: every path, duplicates, file prefixes, count, sizes, and lone surrogates in
    text.

    Args:
        files: The generated files.
        limits: Bounds on count and sizes.
        allow_workflows: Whether CI configuration and git hooks are allowed (see :func:`check_path`).

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
        problem = content_surrogate(path, f.content)
        if problem:
            raise PathRuleViolation(_show(path), "no-surrogates", problem)
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
