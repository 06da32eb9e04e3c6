"""The catalog: the one list of Block types, built-in shorthands, the name and tenant id rules, document names
that cannot collide and operator-only fields (no Prefect server)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from blocks import catalog
from blocks.catalog import BLOCK_TYPES, PORTS, block_classes, block_type, builtin_slug, check_name, shorthand_names
from blocks.repositories.base import is_network_git_url
from core.errors import ConfigError
from core.names import NAME_PATTERN, check_tenant_id, is_valid_name, is_valid_tenant_id


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


# --- tenant namespaces (DESIGN §6) -----------------------------------------------------------------
@pytest.mark.parametrize(
    "pairs",
    [
        [("a", "b--c"), ("a--b", "c")],
        [("Acme", "site"), ("acme", "site"), ("ACME", "site")],
        [("a_b", "site"), ("a.b", "site"), ("a-b", "site"), ("a b", "site")],
        [("t", "1-x"), ("t-1", "x")],
    ],
    ids=["dashes", "case", "punctuation", "digest-boundary"],
)
def test_document_names_never_collide(pairs: list[tuple[str, str]]) -> None:
    names = [catalog.document_name(tenant, name) for tenant, name in pairs]
    assert len(set(names)) == len(names)
    for doc, (_tenant, name) in zip(names, pairs, strict=True):
        assert re.fullmatch(r"t-[0-9a-f]{16}-" + re.escape(name), doc)  # fixed-length digest, then the name
        assert re.fullmatch(r"[a-z0-9-]+", doc)  # what Prefect accepts as a Block document name


def test_document_name_checks_the_name() -> None:
    with pytest.raises(ConfigError, match="Block name"):
        catalog.document_name("acme", "A_b")


@pytest.mark.parametrize("tenant_id", ["a", "acme", "a--b", "local", "t1", "x" * 63])
def test_good_tenant_ids(tenant_id: str) -> None:
    assert check_tenant_id(tenant_id) == tenant_id and is_valid_tenant_id(tenant_id)


@pytest.mark.parametrize("tenant_id", ["", "Acme", "a_b", "a.b", "a b", "-a", "x" * 64, "a\n", "é", "a/b"])
def test_bad_tenant_ids_are_refused_with_the_rule(tenant_id: str) -> None:
    assert not is_valid_tenant_id(tenant_id)
    with pytest.raises(ConfigError, match=r"tenant id .* is invalid; use 1-63 lowercase letters"):
        check_tenant_id(tenant_id)


# --- operator-only fields ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/app.git",
        "http://git.example.com/app.git",
        "ssh://git@git.example.com:2222/acme/app.git",
        "git://git.example.com/app.git",
        "git.example.com:acme/app.git",
        "[2001:db8::1]:acme/app.git",
    ],
)
def test_network_git_remotes(url: str) -> None:
    assert is_network_git_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "file:///srv/repos/victim.git",
        "FILE:///srv/repos/victim.git",
        "/srv/repos/victim.git",
        "./victim.git",
        "../victim.git",
        "~/victim.git",
        "victim.git",
        "ext::sh -c touch% /tmp/pwned",
        "fd::3",
        "foo::https://example.com/x.git",
        "--upload-pack=touch /tmp/pwned",
        "-oProxyCommand=x:y",
        "ssh://-oProxyCommand=x/y",
        "https:///no-host",
        "host:",
        "https://example.com/a b",
        "",
    ],
)
def test_local_or_odd_git_remotes(url: str) -> None:
    assert not is_network_git_url(url)


def test_each_local_block_declares_its_operator_only_fields() -> None:
    from blocks.repositories.git_remote import GitRemoteTarget
    from blocks.repositories.local_git import LocalGitRepository
    from blocks.targets.local_static import LocalStaticSite

    assert catalog.operator_settings(LocalStaticSite()) == {}
    assert set(catalog.operator_settings(LocalStaticSite(root="/srv", base_url="http://127.0.0.1:1/"))) == {
        "root",
        "base_url",
    }
    assert catalog.operator_settings(LocalGitRepository()) == {}
    assert list(catalog.operator_settings(LocalGitRepository(root="/srv/repos"))) == ["root"]
    assert catalog.operator_settings(GitRemoteTarget(url="https://git.example.com/a.git")) == {}
    assert list(catalog.operator_settings(GitRemoteTarget(url="file:///srv/a.git"))) == ["url"]
    for block_type_ in BLOCK_TYPES:  # every other type names nothing on the worker
        if block_type_.slug not in ("pombolt-local-static-site", "pombolt-local-git", "pombolt-git-remote"):
            assert getattr(block_type_.load(), "_operator_fields", ()) == ()
