"""The catalog: the one list of Block types, built-in shorthands and the name rule (no Prefect server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from blocks import catalog
from blocks.catalog import BLOCK_TYPES, PORTS, block_classes, block_type, builtin_slug, check_name, shorthand_names
from core.errors import ConfigError
from core.names import NAME_PATTERN, is_valid_name


@pytest.mark.parametrize("entry", BLOCK_TYPES, ids=lambda t: t.slug)
def test_every_entry_names_its_class_slug_and_port(entry: catalog.BlockType) -> None:
    cls = entry.load()
    assert cls.get_block_type_slug() == entry.slug
    assert entry.slug.startswith("pombolt-")
    assert issubclass(cls, PORTS[entry.role])


def test_slugs_and_shorthands_are_unique_and_every_class_is_listed() -> None:
    slugs = [t.slug for t in BLOCK_TYPES]
    shorthands = [t.shorthand for t in BLOCK_TYPES if t.shorthand]
    assert len(set(slugs)) == len(slugs) and len(set(shorthands)) == len(shorthands)
    assert [cls.get_block_type_slug() for cls in block_classes()] == slugs
    assert block_type("pombolt-netlify") is not None and block_type("netlify") is None


def test_shorthand_names_per_kind() -> None:
    assert shorthand_names("generator") == ["offline", "openai"]
    assert shorthand_names("repository") == ["local-git", "none"]
    assert shorthand_names("target") == ["local-static"]


@pytest.mark.parametrize(
    ("kind", "ref", "slug"),
    [
        ("target", "local-static", "pombolt-local-static-site"),
        ("generator", "openai", "pombolt-openai-generator"),  # no OPENAI_API_KEY needed: nothing is built
        ("repository", "local-git", "pombolt-local-git"),
        ("repository", "none", None),
        ("target", "acme-netlify", None),
        ("target", "offline", None),  # a shorthand of another kind
    ],
)
def test_builtin_slug_answers_without_building(
    kind: catalog.Kind, ref: str, slug: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert builtin_slug(kind, ref) == slug


def test_a_shorthand_builds_an_unsaved_block_of_its_type() -> None:
    block = catalog.SHORTHANDS["target"]["local-static"]()
    assert block.get_block_type_slug() == "pombolt-local-static-site"


def test_openai_shorthand_needs_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        catalog.SHORTHANDS["generator"]["openai"]()


@pytest.mark.parametrize("name", ["a", "acme-netlify", "0-9", "x" * 63])
def test_good_names(name: str) -> None:
    assert check_name(name) == name and is_valid_name(name)


@pytest.mark.parametrize("name", ["", "-a", "A", "a_b", "a b", "x" * 64, "a\n", "é"])
def test_bad_names_are_refused_with_the_rule(name: str) -> None:
    assert not is_valid_name(name)
    with pytest.raises(ConfigError, match=r"Block name .* is invalid; use 1-63 lowercase letters"):
        check_name(name)


def test_the_pattern_is_anchored_for_pydantic() -> None:
    assert NAME_PATTERN.startswith("^") and NAME_PATTERN.endswith("$")


def test_the_catalog_imports_no_upper_floor() -> None:
    source = Path(catalog.__file__).read_text(encoding="utf-8")
    for floor in ("usecases", "tasks", "api", "flows", "ops", "bench"):
        assert f"from {floor}" not in source and f"import {floor}" not in source
