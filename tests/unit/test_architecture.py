"""The floors of the tree (DESIGN §7) and the size of its rooms, checked on the source with ``ast``.

Imports run one way: ``core`` → ``blocks`` → ``usecases`` → ``tasks`` | ``api`` → ``flows`` → ``ops`` (→ ``bench``).
A module may import its own floor or any floor below; ``tasks`` and ``api`` share a floor and neither imports the
other; no module of the product imports ``tests`` or ``bench``. Every import counts: module level, inside
functions, under ``TYPE_CHECKING``, relative, and ``importlib.import_module("literal")``.

Modules stay under 400 lines and functions (from ``def`` to the last line of the body) under 60. A room that
truly must be bigger is named in :data:`EXCEPTIONS` with its reason; an exception that is no longer needed
fails too, so the list stays honest.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Floor of each top-level package; a module of floor F may import floors <= F (same floor: same package only).
FLOORS: dict[str, int] = {
    "core": 0,
    "blocks": 1,
    "usecases": 2,
    "tasks": 3,
    "api": 3,
    "flows": 4,
    "ops": 5,
    "bench": 6,
}
#: The product's packages: walked for imports and sizes.
PACKAGES = ("core", "blocks", "usecases", "tasks", "flows", "api", "ops")
#: Never imported by the product.
FORBIDDEN = ("tests", "bench")

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

#: ``"path"`` (a module) or ``"path::Qualified.name"`` (a function) → why it must stay long. Keep it empty.
EXCEPTIONS: dict[str, str] = {}


@dataclass(frozen=True)
class Import:
    """One import statement's target, resolved to an absolute dotted name."""

    line: int
    target: str


# --- checking functions (pure: source text in, findings out) ------------------------------------------------
def module_name(rel_path: str) -> str:
    """``api/routes/x.py`` → ``api.routes.x``; ``core/store/__init__.py`` → ``core.store``."""
    parts = list(Path(rel_path).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_parts(rel_path: str) -> list[str]:
    """The package a module's relative imports start from."""
    parts = list(Path(rel_path).parts)
    return parts[:-1]  # for __init__.py too: the package is its folder


def imports_of(rel_path: str, source: str) -> list[Import]:
    """Every import in a module, wherever it stands, resolved to absolute dotted names.

    A relative import climbing above the top-level package resolves to ``"<beyond top level>"``.
    """
    found: list[Import] = []
    for node in ast.walk(ast.parse(source, filename=rel_path)):
        if isinstance(node, ast.Import):
            found.extend(Import(node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append(Import(node.lineno, node.module or ""))
                continue
            base = _package_parts(rel_path)
            up = node.level - 1
            if up >= len(base):
                found.append(Import(node.lineno, "<beyond top level>"))
                continue
            prefix = base[: len(base) - up]
            target = ".".join([*prefix, node.module] if node.module else prefix)
            found.append(Import(node.lineno, target))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append(Import(node.lineno, node.args[0].value))
    return found


def floor_violations(rel_path: str, source: str) -> list[str]:
    """Imports of a module that run upward, sideways between ``tasks`` and ``api``, or into tests/bench."""
    own = Path(rel_path).parts[0]
    own_floor = FLOORS[own]
    problems: list[str] = []
    for imp in imports_of(rel_path, source):
        top = imp.target.split(".")[0]
        where = f"{rel_path}:{imp.line} imports {imp.target}"
        if imp.target == "<beyond top level>":
            problems.append(f"{where} (relative import above the top-level package)")
        elif top in FORBIDDEN:
            problems.append(f"{where} (the product never imports {top})")
        elif top not in FLOORS:
            continue  # the standard library or a third-party package
        elif FLOORS[top] > own_floor:
            problems.append(f"{where} (upward: {own} is floor {own_floor}, {top} is floor {FLOORS[top]})")
        elif FLOORS[top] == own_floor and top != own:
            problems.append(f"{where} (sideways: {own} and {top} share floor {own_floor})")
    return problems


def function_lengths(source: str) -> dict[str, int]:
    """Qualified name → lines from ``def`` to the body's last line, for every function and method (nested too)."""
    lengths: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                assert child.end_lineno is not None
                lengths[name] = child.end_lineno - child.lineno + 1
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return lengths


def size_findings(rel_path: str, source: str) -> dict[str, str]:
    """Key (``path`` or ``path::func``) → what is too long, before exceptions are applied."""
    found: dict[str, str] = {}
    lines = len(source.splitlines())
    if lines > MAX_MODULE_LINES:
        found[rel_path] = f"{rel_path}: {lines} lines (limit {MAX_MODULE_LINES})"
    for name, count in function_lengths(source).items():
        if count > MAX_FUNCTION_LINES:
            found[f"{rel_path}::{name}"] = f"{rel_path}::{name}: {count} lines (limit {MAX_FUNCTION_LINES})"
    return found


def size_violations(sources: dict[str, str], exceptions: dict[str, str]) -> list[str]:
    """Over-long modules and functions not excepted, plus exceptions that no longer hold."""
    found: dict[str, str] = {}
    for rel_path, source in sources.items():
        found.update(size_findings(rel_path, source))
    problems = [message for key, message in sorted(found.items()) if key not in exceptions]
    problems += [
        f"stale exception {key!r} ({reason}): it is within the limits now, or names nothing; remove it"
        for key, reason in sorted(exceptions.items())
        if key not in found
    ]
    return problems


# --- the tree --------------------------------------------------------------------------------------------
def product_sources() -> dict[str, str]:
    """Relative path → source of every module in the product's packages."""
    return {
        path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8")
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    return product_sources()


def test_the_walk_finds_modules_in_every_package(sources: dict[str, str]) -> None:
    empty = [p for p in PACKAGES if not any(path.startswith(f"{p}/") for path in sources)]
    assert not empty, f"no modules found under {empty}: the walk would pass vacuously"


def test_no_module_imports_a_floor_above_its_own_or_tests_or_bench(sources: dict[str, str]) -> None:
    problems = [p for rel_path, source in sources.items() for p in floor_violations(rel_path, source)]
    assert not problems, f"{len(problems)} imports against the floors:\n" + "\n".join(problems)


def test_no_module_or_function_is_over_its_size_limit(sources: dict[str, str]) -> None:
    problems = size_violations(sources, EXCEPTIONS)
    assert not problems, f"{len(problems)} over the size limits:\n" + "\n".join(problems)


# --- the checks can fail ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rel_path", "source", "expected"),
    [
        ("core/x.py", "import blocks.catalog\n", "upward"),
        ("blocks/x.py", "def f():\n    from usecases import submit\n", "upward"),
        (
            "usecases/x.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from tasks import common\n",
            "upward",
        ),
        ("tasks/x.py", "from api.deps import AppState\n", "sideways"),
        ("api/routes/x.py", "import tasks.generate\n", "sideways"),
        ("flows/x.py", "class C:\n    def m(self):\n        import ops.cli\n", "upward"),
        ("ops/x.py", "import importlib\nimportlib.import_module('bench.pipeline')\n", "never imports bench"),
        ("core/x.py", "from tests.fakes import base\n", "never imports tests"),
        ("core/x.py", "from .. import anything\n", "above the top-level package"),
    ],
)
def test_the_floor_check_catches_a_bad_import(rel_path: str, source: str, expected: str) -> None:
    problems = floor_violations(rel_path, source)
    assert len(problems) == 1 and expected in problems[0], problems


@pytest.mark.parametrize(
    ("rel_path", "source"),
    [
        ("flows/x.py", "import core.models\nfrom blocks import catalog\nimport usecases.submit\nimport tasks.build\n"),
        ("api/routes/x.py", "from . import health\nfrom ..deps import AppState\nfrom .. import schemas\n"),
        ("core/store/__init__.py", "from .prepared import PreparedSet\nfrom . import prepared\n"),
        ("ops/x.py", "import prefect\nfrom sqlalchemy import event\nimport flows.pipeline\nimport api.app\n"),
    ],
)
def test_the_floor_check_lets_a_downward_import_through(rel_path: str, source: str) -> None:
    assert floor_violations(rel_path, source) == []


def test_relative_imports_resolve_from_the_modules_package() -> None:
    targets = [i.target for i in imports_of("api/routes/x.py", "from ..deps import A\nfrom . import b\n")]
    assert targets == ["api.deps", "api.routes"]
    targets = [i.target for i in imports_of("core/store/__init__.py", "from .prepared import P\nfrom .. import e\n")]
    assert targets == ["core.store.prepared", "core"]


def _function(name: str, lines: int, indent: str = "") -> str:
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(lines - 1))
    return f"{indent}def {name}():\n{body}"


def test_the_size_check_catches_a_61_line_function_and_lets_60_through() -> None:
    source = _function("long", 61) + "\n\n" + _function("fine", 60) + "\n\nclass K:\n" + _function("meth", 61, "    ")
    assert function_lengths(source)["long"] == 61
    problems = size_violations({"tasks/x.py": source}, {})
    assert problems == [
        "tasks/x.py::K.meth: 61 lines (limit 60)",
        "tasks/x.py::long: 61 lines (limit 60)",
    ]


def test_the_size_check_counts_from_def_not_from_the_decorator() -> None:
    source = "@decorator\n@another(\n    1,\n)\n" + _function("f", 60)
    assert function_lengths(source) == {"f": 60}


def test_the_size_check_catches_a_401_line_module() -> None:
    source = "".join(f"x{i} = {i}\n" for i in range(401))
    assert size_violations({"core/x.py": source}, {}) == ["core/x.py: 401 lines (limit 400)"]


def test_an_exception_excuses_its_function_and_a_stale_one_fails() -> None:
    source = _function("long", 61) + _function("short", 5)
    assert size_violations({"ops/x.py": source}, {"ops/x.py::long": "a reason"}) == []
    problems = size_violations({"ops/x.py": source}, {"ops/x.py::long": "a", "ops/x.py::short": "b"})
    assert len(problems) == 1 and "stale exception 'ops/x.py::short'" in problems[0]


def test_exception_keys_are_paths_of_the_product() -> None:
    for key in EXCEPTIONS:
        path = key.split("::")[0]
        assert path.split("/")[0] in PACKAGES and (ROOT / path).is_file(), key


def test_the_static_server_process_starts_without_importing_prefect() -> None:
    """``python -m ops.static_server`` is started on demand with a 10 s budget: it must not pay Prefect's import."""
    import subprocess
    import sys

    probe = "import sys, ops.static_server; print(sorted(m for m in sys.modules if m.split('.')[0] == 'prefect'))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]", f"ops.static_server imports Prefect: {done.stdout.strip()[:300]}"
