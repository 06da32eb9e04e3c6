"""Resolve Block references to Blocks, only among the tenant's own.

A reference is either a built-in shorthand (``offline``, ``openai``, ``local-git``, ``none``,
``local-static``) — an unsaved Block built from settings and the environment — or the name a tenant
saved a Block under (``acme-netlify``), looked up in the tenant's bindings in the state store.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal, cast

from prefect.blocks.core import Block

from blocks.generators.base import Generator
from blocks.repositories.base import RepositoryTarget
from blocks.targets.base import DeploymentTarget
from core.errors import ConfigError, UnknownBlock
from core.store import Store

Kind = Literal["generator", "repository", "target"]

PORTS: dict[Kind, type[Block]] = {
    "generator": Generator,
    "repository": RepositoryTarget,
    "target": DeploymentTarget,
}

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def _offline() -> Block:
    from blocks.generators.offline import OfflineTemplateGenerator

    return OfflineTemplateGenerator()


def _openai() -> Block:
    from blocks.generators.openai_compat import OpenAICompatibleGenerator

    block: Block = OpenAICompatibleGenerator.from_env()
    return block


def _local_git() -> Block:
    from blocks.repositories.local_git import LocalGitRepository

    return LocalGitRepository()


def _local_static() -> Block:
    from blocks.targets.local_static import LocalStaticSite

    return LocalStaticSite()


SHORTHANDS: dict[Kind, dict[str, Callable[[], Block]]] = {
    "generator": {"offline": _offline, "openai": _openai},
    "repository": {"local-git": _local_git},
    "target": {"local-static": _local_static},
}


def shorthand_names(kind: Kind) -> list[str]:
    """Built-in references for a kind of Block."""
    names = list(SHORTHANDS[kind])
    return [*names, "none"] if kind == "repository" else names


def document_name(tenant_id: str, name: str) -> str:
    """The Prefect Block document name a tenant's Block is saved under."""
    safe = re.sub(r"[^a-z0-9-]", "-", tenant_id.lower())
    return f"t-{safe}--{name}"


def check_name(name: str) -> str:
    """Validate a Block name chosen by a tenant.

    Raises:
        ConfigError: When the name is not lowercase letters, digits and dashes.
    """
    if not _NAME.match(name):
        raise ConfigError(f"Block name {name!r} is invalid; use 1-63 lowercase letters, digits and dashes")
    return name


def resolve(kind: Kind, ref: str, *, tenant_id: str, store: Store) -> Block | None:
    """Return the Block a reference names, or None for ``--repository none``.

    Raises:
        UnknownBlock: When the tenant owns no Block by that name, or it is of the wrong kind.
    """
    if kind == "repository" and ref == "none":
        return None
    factory = SHORTHANDS[kind].get(ref)
    if factory is not None:
        return factory()
    binding = store.find_block(tenant_id, ref)
    if binding is None:
        choices = ", ".join(shorthand_names(kind))
        raise UnknownBlock(
            f"no {kind} Block named {ref!r}; save one first (PUT /api/blocks/SLUG/{ref} or "
            f"'pombolt blocks save') or use a built-in: {choices}"
        )
    from usecases.setup import block_classes

    block_classes()  # import every Block class: a fresh worker process knows none of our slugs otherwise
    try:
        block = Block.load(f"{binding.slug}/{binding.document_name}")
    except ValueError as exc:
        raise UnknownBlock(f"{kind} Block {ref!r} is registered but its document is gone; save it again") from exc
    if not isinstance(block, PORTS[kind]):
        raise UnknownBlock(f"Block {ref!r} is a {binding.slug}, which cannot be used as a {kind}")
    return block


def resolve_generator(ref: str, *, tenant_id: str, store: Store) -> Generator:
    """Resolve a generator reference (never None)."""
    return cast(Generator, _required("generator", ref, tenant_id, store))


def resolve_repository(ref: str, *, tenant_id: str, store: Store) -> RepositoryTarget:
    """Resolve a repository reference that is not ``none``."""
    return cast(RepositoryTarget, _required("repository", ref, tenant_id, store))


def resolve_target(ref: str, *, tenant_id: str, store: Store) -> DeploymentTarget:
    """Resolve a deployment target reference."""
    return cast(DeploymentTarget, _required("target", ref, tenant_id, store))


def _required(kind: Kind, ref: str, tenant_id: str, store: Store) -> Block:
    block = resolve(kind, ref, tenant_id=tenant_id, store=store)
    if block is None:
        raise ConfigError(f"{kind} reference {ref!r} names no Block")
    return block


def save_block(store: Store, tenant_id: str, name: str, block: Block) -> str:
    """Save a Block as the tenant's ``name`` (replacing an earlier one) and return its document name."""
    check_name(name)
    doc = document_name(tenant_id, name)
    block.save(doc, overwrite=True)
    store.bind_block(tenant_id, name, block.get_block_type_slug(), doc)
    return doc
