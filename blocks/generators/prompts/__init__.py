"""Versioned prompts for the OpenAI-compatible generator, kept as package data (one Markdown file each).

``PROMPT_VERSION`` is part of the generator's configuration and fingerprint, so changing a prompt and
bumping it makes every cached generation stale; :func:`prompts_digest` also covers the exact bytes.
Placeholders are ``{{name}}``; they are filled in one pass and never re-expanded, so user text that
contains ``{{...}}`` stays literal.
"""

from __future__ import annotations

import functools
import hashlib
import re
from importlib import resources

PROMPT_VERSION = "2026-11-27.1"
"""Bump whenever a prompt file changes."""

NAMES = ("system", "generate", "plan", "file", "repair", "format_json", "format_blocks")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@functools.cache
def prompt(name: str) -> str:
    """The text of one prompt file (``name`` without ``.md``)."""
    if name not in NAMES:
        raise KeyError(f"no prompt named {name!r}; known: {', '.join(NAMES)}")
    return resources.files(__name__).joinpath(f"{name}.md").read_text(encoding="utf-8")


def render(name: str, **values: str) -> str:
    """Fill a prompt's ``{{placeholders}}`` (every one must be given)."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], prompt(name))


@functools.cache
def prompts_digest() -> str:
    """SHA-256 over every prompt file, in name order."""
    digest = hashlib.sha256(PROMPT_VERSION.encode())
    for name in NAMES:
        digest.update(name.encode() + b"\0" + prompt(name).encode() + b"\0")
    return digest.hexdigest()
