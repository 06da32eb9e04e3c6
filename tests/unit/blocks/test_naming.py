"""Names of a project's repositories and sites: a slug of the project name plus a short id."""

from __future__ import annotations

import re

import pytest

from blocks.naming import repository_name


def test_repository_name_is_a_slug_plus_short_id() -> None:
    assert repository_name("My Todo App!", "3F2A9C01DEADBEEF") == "my-todo-app-3f2a9c01"
    assert repository_name("Überwachung — Café", "ab-12") == "uberwachung-cafe-ab12"
    assert repository_name("!!!", "x") == "app-x"


@pytest.mark.parametrize("name", ["a" * 200, "--x--", "日本語のアプリ", "a/b\\c..d", "\U0001f345 timer"])
def test_every_name_is_valid_for_every_provider(name: str) -> None:
    out = repository_name(name, "0123456789abcdef")
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{0,79}", out) and not out.endswith("-") and len(out) <= 49
