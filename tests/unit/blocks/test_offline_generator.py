"""Unit tests of the offline template generator (no Prefect server, no network)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from blocks.generators.base import GenerationRequest, GenerationResult, Generator
from blocks.generators.offline import OFFLINE_NOTICE, OfflineTemplateGenerator, feature_registry
from core.files import GeneratedFile, validate_files
from tests.contracts.generator_suite import GeneratorContract

POMODORO = "a pomodoro timer with a task list and dark mode"
ALL_FEATURES = (
    "A pomodoro timer, a todo list, notes, a counter, a stopwatch, a calculator, a unit converter and dark mode"
)
XSS = "<script>alert(1)</script>"
EXPECTED_FILES = ["README.md", "app.js", "index.html", "styles.css"]


def generate(
    requirements: str,
    *,
    change_request: str | None = None,
    current_files: list[GeneratedFile] | None = None,
    project_name: str = "Demo",
    **fields: str,
) -> GenerationResult:
    request = GenerationRequest(
        requirements=requirements,
        project_name=project_name,
        change_request=change_request,
        current_files=current_files or [],
    )
    return OfflineTemplateGenerator(**fields).generate(request)


def files_of(result: GenerationResult) -> dict[str, str]:
    return {f.path: f.content.decode("utf-8") for f in result.files}


def sections(index_html: str) -> list[str]:
    return re.findall(r'<section id="([\w-]+)"[^>]*data-feature="\1"', index_html)


# --- determinism -----------------------------------------------------------------------------------
def test_same_input_gives_the_same_bytes_in_every_file() -> None:
    first, second = generate(ALL_FEATURES), generate(ALL_FEATURES)
    assert [f.path for f in first.files] == [f.path for f in second.files]
    for a, b in zip(first.files, second.files, strict=True):
        assert a.content == b.content, a.path
        assert a.mode == b.mode
    assert first == second


def test_different_input_gives_a_different_index() -> None:
    assert files_of(generate(POMODORO))["index.html"] != files_of(generate("a calculator"))["index.html"]
    # Even without new features, the shown requirements differ.
    assert files_of(generate("a counter"))["index.html"] != files_of(generate("a counter!"))["index.html"]


# --- shape of the output ---------------------------------------------------------------------------
def test_produces_the_static_app_files_and_metadata() -> None:
    result = generate(POMODORO)
    assert sorted(f.path for f in result.files) == EXPECTED_FILES
    assert all(f.mode == "100644" for f in result.files)
    assert result.usage.calls == 0
    assert result.usage.prompt_tokens == result.usage.completion_tokens == 0
    assert result.label == "offline template"
    assert result.deleted == []


def test_validate_files_accepts_the_output() -> None:
    result = generate(ALL_FEATURES + "\n" + XSS)
    assert sorted(f.path for f in validate_files(result.files)) == EXPECTED_FILES


def test_title_is_derived_from_the_requirements() -> None:
    index = files_of(generate(POMODORO))["index.html"]
    assert "<title>Pomodoro timer</title>" in index
    assert '<h1 id="app-title">Pomodoro timer</h1>' in index
    assert files_of(generate(POMODORO))["README.md"].startswith("# Pomodoro timer\n")


@pytest.mark.parametrize(
    ("requirements", "title"),
    [
        ("Build me a simple to-do app.", "To-do app"),
        ("  A calculator for my kids", "Calculator"),
        ("I want an app", "Demo"),  # nothing left: the project name
        ("", "Demo"),
    ],
)
def test_title_variants(requirements: str, title: str) -> None:
    assert f"<title>{title}</title>" in files_of(generate(requirements))["index.html"]


def test_pomodoro_tasks_dark_mode_gives_those_three_sections() -> None:
    index = files_of(generate(POMODORO))["index.html"]
    assert sections(index) == ["requirements", "timer", "tasks", "theme"]
    for element in ("timer-start", "timer-pause", "timer-reset", "tasks-input", "theme-toggle"):
        assert f'id="{element}"' in index


@pytest.mark.parametrize(
    ("phrase", "key"),
    [
        ("a countdown", "timer"),
        ("my to-do items", "tasks"),
        ("a place for notes", "notes"),
        ("a tally counter", "counter"),
        ("a stopwatch with laps", "stopwatch"),
        ("calculate sums", "calculator"),
        ("convert celsius", "converter"),
        ("a night mode", "theme"),
    ],
)
def test_each_feature_is_recognised_with_its_script(phrase: str, key: str) -> None:
    files = files_of(generate(phrase))
    assert sections(files["index.html"]) == ["requirements", key]
    assert f'pomBolt.section("{key}")' in files["app.js"]


def test_every_registered_feature_together_keeps_element_ids_unique() -> None:
    index = files_of(generate(ALL_FEATURES))["index.html"]
    assert sections(index) == ["requirements", *(f.key for f in feature_registry())]
    ids = re.findall(r'\bid="([^"]+)"', index)
    assert len(ids) == len(set(ids))


def test_unrecognised_text_shows_the_requirements_and_a_generic_section() -> None:
    files = files_of(generate("Something about gardening\nwith roses"))
    assert sections(files["index.html"]) == ["requirements", "generic"]
    assert "<p>Something about gardening</p>" in files["index.html"]
    assert "<p>with roses</p>" in files["index.html"]
    assert "gardening" in files["README.md"]


def test_offline_notice_is_visible() -> None:
    files = files_of(generate(POMODORO))
    assert "Generated offline" in OFFLINE_NOTICE and "no AI model" in OFFLINE_NOTICE
    assert f'<p class="offline-notice" id="offline-notice" role="note">{OFFLINE_NOTICE}</p>' in files["index.html"]
    assert OFFLINE_NOTICE in files["README.md"]


def test_dark_theme_field_sets_the_body_class() -> None:
    assert '<body class="light"' in files_of(generate(POMODORO))["index.html"]
    assert '<body class="dark"' in files_of(generate(POMODORO, theme="dark"))["index.html"]


# --- untrusted text ------------------------------------------------------------------------------
def test_script_in_requirements_appears_only_escaped() -> None:
    result = generate(
        f"a timer {XSS}\n{XSS}",
        change_request=f"and a counter {XSS}",
        project_name=XSS,
    )
    files = files_of(result)
    for path, text in files.items():
        assert XSS not in text, path
        assert "<script>alert" not in text, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in files["index.html"]
    assert "&lt;script&gt;" in files["README.md"]


def test_requirements_never_reach_the_script_or_styles() -> None:
    marker = 'zq"x</style>marker'
    files = files_of(generate(f"{ALL_FEATURES} {marker}", change_request=marker))
    assert "zq" not in files["app.js"]
    assert "zq" not in files["styles.css"]


def test_project_name_as_title_is_escaped() -> None:
    index = files_of(generate("", project_name='Tom & "Jerry" <b>'))["index.html"]
    assert "<title>Tom &amp; &quot;Jerry&quot; &lt;b&gt;</title>" in index


@pytest.mark.parametrize("requirements", [POMODORO, ALL_FEATURES, "nothing recognisable"])
def test_app_js_passes_node_check(requirements: str, tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        message = "`node` is not on PATH: the generated app.js was NOT syntax-checked"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true requires node)")
        pytest.skip("!!! " + message + " — install Node.js to run this check !!!")
    script = tmp_path / "app.js"
    script.write_bytes(files_of(generate(requirements))["app.js"].encode("utf-8"))
    proc = subprocess.run([node, "--check", str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# --- change requests -----------------------------------------------------------------------------
def test_change_request_adds_a_recognised_feature() -> None:
    before = generate("a task list")
    after = generate(
        "a task list",
        change_request="please add a dark mode toggle",
        current_files=[*before.files, GeneratedFile.text("old/extra.js", "1;")],
    )
    assert sections(files_of(before)["index.html"]) == ["requirements", "tasks"]
    index = files_of(after)["index.html"]
    assert sections(index) == ["requirements", "tasks", "theme"]
    assert "<p>please add a dark mode toggle</p>" in index
    assert after.deleted == ["old/extra.js"]
    # The change is deterministic too.
    assert after == generate(
        "a task list",
        change_request="please add a dark mode toggle",
        current_files=[*before.files, GeneratedFile.text("old/extra.js", "1;")],
    )


# --- the Block -----------------------------------------------------------------------------------
class TestOfflineGeneratorContract(GeneratorContract):
    @pytest.fixture
    def generator(self) -> Generator:
        return OfflineTemplateGenerator()

    @pytest.fixture
    def variant(self) -> dict[str, Any]:
        return {"theme": "dark"}

    @pytest.fixture
    def misconfigured(self) -> Callable[[], Generator]:
        return lambda: OfflineTemplateGenerator(accent_color="red")

    @pytest.fixture
    def misconfiguration_hint(self) -> str:
        return "accent_color"


def test_block_identity_and_preflight() -> None:
    block = OfflineTemplateGenerator()
    assert block.get_block_type_slug() == "pombolt-offline-generator"
    assert block.get_block_type_name() == "Pom-Bolt Offline Generator"
    assert block.get_description()
    assert block.theme == "light"
    block.preflight()  # checks nothing external and does not raise


def test_fingerprint_is_stable_and_follows_every_field() -> None:
    base = OfflineTemplateGenerator().fingerprint()
    assert base == OfflineTemplateGenerator().fingerprint()
    assert re.fullmatch(r"[0-9a-f]{64}", base)
    changed = {
        OfflineTemplateGenerator(theme="dark").fingerprint(),
        OfflineTemplateGenerator(template_version="2").fingerprint(),
        OfflineTemplateGenerator(accent_color="#123456").fingerprint(),
    }
    assert base not in changed
    assert len(changed) == 3


@pytest.mark.parametrize(
    "fields",
    [{"theme": "purple"}, {"accent_color": "red;}</style>"}, {"template_version": "1<script>"}],
)
def test_invalid_configuration_is_refused(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        OfflineTemplateGenerator(**fields)
