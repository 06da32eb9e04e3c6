"""The offline generator: a deterministic template app built from keywords in the requirements.

No network, no model, no clock, no randomness: the same request and configuration give the same bytes.
The requirements are matched against a small feature registry (one :class:`Feature` per section the
template knows how to build); every recognised feature becomes a working section of a static app
(``index.html``, ``styles.css``, ``app.js``, ``README.md``). The snippets live as package data in
``offline_templates/``.

The requirements are untrusted: they reach the output only HTML-escaped (and Markdown-escaped in the
README), never inside JavaScript.
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from pydantic import Field

from blocks.generators.base import GenerationRequest, GenerationResult, Generator, Usage, config_fingerprint
from core.files import GeneratedFile

OFFLINE_NOTICE = "Generated offline by Pom-Bolt's template generator — no AI model was used."
"""The notice every generated page and README shows."""

_TEMPLATES = "blocks.generators.offline_templates"
_ASSET_SUFFIXES = (".html", ".css", ".js", ".md")
_MAX_TITLE_WORDS = 6
_MAX_TITLE_CHARS = 60

# Leading words dropped when a title is derived ("Build me a simple pomodoro timer" -> "Pomodoro timer").
_FILLER_WORDS = frozenset(
    "a an the i we you me us my our please can could would like want need to make build create write "
    "generate design develop give have get simple small little basic tiny quick nice single one "
    "web app application website site page".split()
)
# Where the subject of the first sentence ends.
_TITLE_CUT = re.compile(
    r"\s(?:with|that|which|where|who|so|to|for|and|including|using|featuring|plus)\s|[,.;:!?()\[\]{}<>\"]",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W_](?:[\w'\u2019-]*[^\W_])?")  # words, with inner apostrophes and hyphens
# Markdown punctuation escaped with a backslash (``<``, ``>`` and ``&`` are HTML-escaped instead).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~=])")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@dataclass(frozen=True)
class Feature:
    """One section the offline template can build.

    Attributes:
        key: Stable id of the section: its HTML ``id`` and ``data-feature`` value.
        title: Heading of the section.
        summary: One sentence for the README.
        keywords: Lower-case words or phrases that select the feature; each matches at the start of
            a word, so ``"task"`` also matches ``"tasks"``.
        html: Inner HTML of the section (static; no user text).
        js: Script block that makes the section work (static; no user text).
        css: Styles of the section.
    """

    key: str
    title: str
    summary: str
    keywords: tuple[str, ...]
    html: str
    js: str
    css: str

    @functools.cached_property
    def pattern(self) -> re.Pattern[str]:
        """The regular expression that finds any keyword at the start of a word."""
        alternatives = "|".join(re.escape(k) for k in self.keywords)
        return re.compile(rf"(?<!\w)(?:{alternatives})", re.IGNORECASE)

    def matches(self, text: str) -> bool:
        """Tell whether ``text`` (whitespace-normalised) asks for this feature."""
        return self.pattern.search(text) is not None


@functools.cache
def _asset(name: str) -> str:
    """Read one template asset (UTF-8) from package data."""
    return resources.files(_TEMPLATES).joinpath(name).read_text(encoding="utf-8")


@functools.cache
def assets_digest() -> str:
    """SHA-256 over every template asset, so a template change also changes the cache key."""
    digest = hashlib.sha256()
    entries = sorted(
        (e for e in resources.files(_TEMPLATES).iterdir() if e.name.endswith(_ASSET_SUFFIXES)),
        key=lambda e: e.name,
    )
    for entry in entries:
        digest.update(entry.name.encode() + b"\0" + entry.read_bytes() + b"\0")
    return digest.hexdigest()


def _feature(key: str, title: str, summary: str, keywords: tuple[str, ...]) -> Feature:
    """Build a feature whose snippets are the assets ``<key>.html``, ``<key>.js`` and ``<key>.css``."""
    return Feature(
        key=key,
        title=title,
        summary=summary,
        keywords=keywords,
        html=_asset(f"{key}.html"),
        js=_asset(f"{key}.js"),
        css=_asset(f"{key}.css"),
    )


@functools.cache
def feature_registry() -> tuple[Feature, ...]:
    """The features the offline generator recognises, in the order their sections appear."""
    return (
        _feature(
            "timer",
            "Pomodoro timer",
            "25-minute focus and 5-minute break countdowns with start, pause and reset.",
            ("pomodoro", "timer", "countdown", "count down", "focus session"),
        ),
        _feature(
            "tasks",
            "Tasks",
            "A task list: add tasks, tick them off, delete them; kept in the browser.",
            ("task", "todo", "to-do", "to do list", "checklist", "check list"),
        ),
        _feature(
            "notes",
            "Notes",
            "A notepad that saves as you type, with a word count.",
            ("notes", "notepad", "notebook", "note-taking", "note taking", "journal", "memo", "diary"),
        ),
        _feature(
            "counter",
            "Counter",
            "A counter with increase, decrease, reset and a step size; the count is remembered.",
            ("counter", "tally", "clicker", "click count"),
        ),
        _feature(
            "stopwatch",
            "Stopwatch",
            "A stopwatch with start, stop, laps and reset.",
            ("stopwatch", "stop watch", "lap time", "laps", "elapsed time"),
        ),
        _feature(
            "calculator",
            "Calculator",
            "A calculator: add, subtract, multiply, divide, percent and sign change; keyboard too.",
            ("calc", "arithmetic"),
        ),
        _feature(
            "converter",
            "Unit converter",
            "Converts temperature, distance, weight and length units as you type.",
            ("convert", "conversion", "units", "unit conv", "celsius", "fahrenheit"),
        ),
        _feature(
            "theme",
            "Dark mode",
            "A light/dark switch that is remembered on the device.",
            ("dark", "night mode", "light mode", "theme"),
        ),
    )


def recognise(text: str) -> list[Feature]:
    """Return the registry's features that ``text`` asks for, in registry order."""
    normalised = " ".join(text.split())
    return [f for f in feature_registry() if f.matches(normalised)]


def derive_title(text: str, fallback: str) -> str:
    """Derive a short page title from the subject of the first sentence.

    Args:
        text: The requirements.
        fallback: Used when the text yields no title (e.g. the project name).

    Returns:
        At most six words, first letter capitalised, e.g. ``"Pomodoro timer"`` for
        ``"a pomodoro timer with a task list"``.
    """
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    subject = _TITLE_CUT.split(f" {first_line} ", maxsplit=1)[0]
    words = _WORD.findall(subject)
    while words and words[0].lower() in _FILLER_WORDS:
        words.pop(0)
    title = " ".join(words[:_MAX_TITLE_WORDS])[:_MAX_TITLE_CHARS].strip()
    if not title:
        title = " ".join(fallback.split())[:_MAX_TITLE_CHARS].strip() or "My web app"
    return title[0].upper() + title[1:]


def _escape(text: str) -> str:
    """HTML-escape text for element content and attribute values."""
    return html.escape(text, quote=True)


def _markdown_text(text: str) -> str:
    """Neutralise untrusted text for Markdown: backslash-escape Markdown syntax, HTML-escape the rest."""
    return _escape(_MARKDOWN_SPECIAL.sub(r"\\\1", text))


def _fill(template: str, values: dict[str, str]) -> str:
    """Replace every ``{{name}}`` in one pass (values are never re-expanded); unknown names fail."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def _section(key: str, title: str, inner_html: str) -> str:
    """Wrap a section's inner HTML with its stable ``id``, ``data-feature`` and heading."""
    return (
        f'    <section id="{key}" class="card feature" data-feature="{key}" aria-labelledby="{key}-title">\n'
        f'      <h2 id="{key}-title">{_escape(title)}</h2>\n'
        f"{inner_html.rstrip()}\n"
        "    </section>\n"
    )


def _generic_section() -> str:
    """The section shown when no feature was recognised: what the generator knows how to build."""
    items = "".join(
        f"        <li><strong>{_escape(f.title)}</strong> — say "
        f"{', '.join(f'“{_escape(k)}”' for k in f.keywords[:3])}</li>\n"
        for f in feature_registry()
    )
    inner = (
        "      <p>The offline generator did not recognise a feature it knows how to build in this"
        " description, so the page shows your requirements as written.</p>\n"
        '      <p class="muted">Mention one of these to get a working section:</p>\n'
        f'      <ul class="generic-list">\n{items}      </ul>\n'
    )
    return _section("generic", "Getting started", inner)


class OfflineTemplateGenerator(Generator):
    """Builds a working static app from keywords in the requirements — offline and deterministic."""

    _block_type_name = "Pom-Bolt Offline Generator"
    _block_type_slug = "pombolt-offline-generator"
    _description = (
        "Builds a small working static web app (timer, tasks, notes, counter, stopwatch, calculator, "
        "unit converter, dark mode) from keywords in the requirements. No network, no AI model, no "
        "credentials; the same requirements always give the same files."
    )

    theme: Literal["light", "dark"] = Field(
        "light",
        title="Theme",
        description="Colours the page starts with; a dark-mode section lets visitors switch.",
    )
    accent_color: str = Field(
        "#c2410c",
        title="Accent colour",
        description="CSS hex colour (#rrggbb) of buttons and highlights.",
        pattern=r"^#[0-9a-fA-F]{6}$",
    )
    template_version: str = Field(
        "1",
        title="Template version",
        description="Version tag of the templates; part of the cache key, so changing it forces a fresh generation.",
        pattern=r"^[A-Za-z0-9._-]{1,32}$",
    )

    def preflight(self) -> None:
        """Nothing to check: the generator uses no credentials and no network."""

    def fingerprint(self) -> str:
        """A hash of the configuration and of the bundled templates, for cache keys."""
        combined = f"{config_fingerprint(self)}:{assets_digest()}"
        return hashlib.sha256(combined.encode()).hexdigest()

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Build the app's files from the requirements (plus the change request, if any).

        Args:
            request: The requirements; for a change run, ``change_request`` is appended to them.

        Returns:
            ``index.html``, ``styles.css``, ``app.js`` and ``README.md``; ``deleted`` lists the current
            files this complete regeneration no longer contains.
        """
        text = request.requirements
        if request.change_request:
            text = f"{text}\n{request.change_request}"
        features = recognise(text)
        title = derive_title(request.requirements, request.project_name)
        files = [
            GeneratedFile.text("index.html", self._index_html(title, text, features)),
            GeneratedFile.text("styles.css", self._styles_css(features)),
            GeneratedFile.text("app.js", self._app_js(features)),
            GeneratedFile.text("README.md", self._readme(title, text, features)),
        ]
        produced = {f.path for f in files}
        deleted = sorted({f.path for f in request.current_files} - produced)
        return GenerationResult(files=files, deleted=deleted, usage=Usage(calls=0), label="offline template")

    def _index_html(self, title: str, text: str, features: list[Feature]) -> str:
        """Render ``index.html``: the requirements, then one section per feature."""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        requirements = "\n".join(f"        <p>{_escape(line)}</p>" for line in lines) or "        <p>(empty)</p>"
        sections = "".join(_section(f.key, f.title, f.html) for f in features) or _generic_section()
        return _fill(
            _asset("page.html"),
            {
                "title": _escape(title),
                "notice": html.escape(OFFLINE_NOTICE, quote=False),
                "body_class": self.theme,
                "template_version": _escape(self.template_version),
                "requirements": requirements,
                "sections": sections.rstrip("\n"),
            },
        )

    def _styles_css(self, features: list[Feature]) -> str:
        """Render ``styles.css``: the accent colour, the shared styles, then each feature's styles."""
        accent = f":root {{\n  --accent: {self.accent_color};\n}}\n\n"
        return accent + _asset("base.css") + "".join(f.css for f in features)

    def _app_js(self, features: list[Feature]) -> str:
        """Render ``app.js``: the shared helpers, then each feature's script (no user text)."""
        return _asset("base.js") + "".join(f.js for f in features)

    def _readme(self, title: str, text: str, features: list[Feature]) -> str:
        """Render ``README.md``; the requirements appear Markdown- and HTML-escaped in a quote."""
        listed = "\n".join(f"- **{f.title}** (`#{f.key}`): {f.summary}" for f in features) or (
            "- No specific feature was recognised; the page shows the requirements and what the offline "
            "generator can build."
        )
        quoted = "\n>\n".join(f"> {_markdown_text(line.strip())}" for line in text.splitlines() if line.strip())
        return _fill(
            _asset("readme.md"),
            {
                "title": _markdown_text(title),
                "notice": OFFLINE_NOTICE,
                "features": listed,
                "requirements": quoted or "> (empty)",
                "template_version": _markdown_text(self.template_version),
            },
        )
