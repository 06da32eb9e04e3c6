"""Static checks on generated files: entry page, HTML, JSON, JavaScript syntax, local links.

Each check returns problems as ``{path: message}``; an empty dict means the files pass.
"""

from __future__ import annotations

import json
import posixpath
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path

from core.files import GeneratedFile

_EXTERNAL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//|#)")
_IMPORT = re.compile(r"""(?:^|[;\s])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]""")
_MODULE_SYNTAX = re.compile(r"^\s*(?:import|export)\s", re.MULTILINE)
JS_SUFFIXES = (".js", ".mjs", ".cjs")


class _LinkCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value and tag in ("script", "link", "img", "a", "source", "iframe"):
                self.links.append(value.strip())


def check_entry(files: Sequence[GeneratedFile]) -> dict[str, str]:
    """The project needs an ``index.html`` at its root (or a ``package.json`` that builds one)."""
    paths = {f.path for f in files}
    if "index.html" in paths or "package.json" in paths:
        return {}
    return {"index.html": "the project has no index.html at its root"}


def check_json(files: Sequence[GeneratedFile]) -> dict[str, str]:
    """Every ``.json`` file parses."""
    problems: dict[str, str] = {}
    for f in files:
        if f.path.endswith(".json"):
            try:
                json.loads(f.content.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                problems[f.path] = f"invalid JSON: {exc}"
    return problems


def check_html_links(files: Sequence[GeneratedFile]) -> dict[str, str]:
    """HTML decodes as UTF-8 and every local ``src``/``href`` names a generated file."""
    paths = {f.path for f in files}
    builds = "package.json" in paths
    problems: dict[str, str] = {}
    for f in files:
        if not f.path.endswith((".html", ".htm")):
            continue
        try:
            text = f.content.decode("utf-8")
        except UnicodeDecodeError:
            problems[f.path] = "HTML is not valid UTF-8"
            continue
        parser = _LinkCollector()
        parser.feed(text)
        parser.close()
        base = posixpath.dirname(f.path)
        for link in parser.links:
            if _EXTERNAL.match(link):
                continue
            target = link.split("#", 1)[0].split("?", 1)[0]
            if not target:
                continue
            resolved = posixpath.normpath(
                target.lstrip("/") if target.startswith("/") else posixpath.join(base, target)
            )
            if resolved in paths or f"{resolved}/index.html" in paths or resolved == ".":
                continue
            if builds and target.startswith("/src/"):
                continue  # bundler entry points resolve at build time
            if builds and f"public/{resolved}" in paths:
                continue  # served from public/ after the build
            problems[f.path] = f"links to {link!r}, which is not among the generated files"
            break
    return problems


def check_js_imports(files: Sequence[GeneratedFile]) -> dict[str, str]:
    """Relative imports between generated JavaScript files resolve."""
    paths = {f.path for f in files}
    problems: dict[str, str] = {}
    for f in files:
        if not f.path.endswith(JS_SUFFIXES):
            continue
        text = f.content.decode("utf-8", errors="replace")
        for m in _IMPORT.finditer(text):
            spec = m.group(1) or m.group(2)
            if not spec.startswith("."):
                continue
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(f.path), spec))
            if not any(c in paths for c in (resolved, f"{resolved}.js", f"{resolved}/index.js")):
                problems[f.path] = f"imports {spec!r}, which is not among the generated files"
                break
    return problems


def check_js_syntax(
    files: Sequence[GeneratedFile], *, node: str | None = None, timeout: float = 30.0
) -> dict[str, str]:
    """Every JavaScript file passes ``node --check`` (module files are checked as modules).

    When node is absent the check cannot run and returns no problems; callers that must know use
    :func:`node_path` and say so in their report.
    """
    node = node or node_path()
    js = [f for f in files if f.path.endswith(JS_SUFFIXES)]
    if not node or not js:
        return {}
    problems: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="pombolt-check-") as tmp:
        for i, f in enumerate(js):
            is_module = f.path.endswith(".mjs") or bool(_MODULE_SYNTAX.search(f.content.decode("utf-8", "replace")))
            target = Path(tmp) / f"f{i}{'.mjs' if is_module else '.cjs' if f.path.endswith('.cjs') else '.js'}"
            target.write_bytes(f.content)
            proc = subprocess.run(
                [node, "--check", str(target)], capture_output=True, text=True, timeout=timeout, check=False
            )
            if proc.returncode != 0:
                lines = [ln for ln in proc.stderr.replace(str(target), f.path).splitlines() if ln.strip()]
                problems[f.path] = "JavaScript syntax error: " + " | ".join(lines[:6])[:600]
    return problems


def node_path() -> str | None:
    """Path of the ``node`` executable, or None."""
    return shutil.which("node")


def run_checks(files: Sequence[GeneratedFile]) -> dict[str, str]:
    """Run every check; the first problem per file wins."""
    problems: dict[str, str] = {}
    for check in (check_entry, check_json, check_html_links, check_js_imports, check_js_syntax):
        for path, message in check(files).items():
            problems.setdefault(path, message)
    return problems
