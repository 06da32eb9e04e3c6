"""The one list of Pom-Bolt's Block types, and Block references resolved only among the tenant's own.

:data:`BLOCK_TYPES` names every Block type (DESIGN §4): its slug, its role (generator, repository or
deployment target), where its class lives — imported only when needed, so listing the types imports no
provider SDK — and the built-in shorthand that stands for an unsaved Block of it, if any.

A reference is either a built-in shorthand (``offline``, ``openai``, ``local-git``, ``none``,
``local-static``) — an unsaved Block built from settings and the environment — or the name a tenant
saved a Block under (``acme-netlify``), looked up in the tenant's bindings in the state store.

Tenant namespaces cannot collide (DESIGN §6). A tenant's Block ``name`` is saved as the Prefect document
:func:`document_name` ``t-<16 hex of sha256(tenant id)>-<name>``: the digest has a fixed length and the name
follows the rule of :mod:`core.names`, so the document name determines both the tenant (up to a 64-bit digest
collision, which :func:`save_block` refuses anyway) and the name — unlike an escaped tenant id, where ``a`` +
``b--c`` and ``a--b`` + ``c`` (or ``Acme``/``acme``, ``a_b``/``a.b``/``a-b``) met in one document. The binding
row (tenant, name → type slug, document name) stays the one source of truth: a Block resolves to the document
its binding names, so a Block saved under an older naming rule keeps working, unless another tenant's binding
names the same document — then neither may use it until it is saved again.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast

from prefect.blocks.core import Block

from blocks.base import OperatorFields
from blocks.generators.base import Generator
from blocks.repositories.base import RepositoryTarget
from blocks.targets.base import DeploymentTarget
from core.errors import ConfigError, UnknownBlock
from core.models import BlockBinding
from core.names import check_name as check_any_name
from core.store import Store

__all__ = [
    "BLOCK_TYPES",
    "NO_REPOSITORY",
    "PORTS",
    "SHORTHANDS",
    "BlockType",
    "Kind",
    "block_classes",
    "block_type",
    "builtin_slug",
    "check_name",
    "document_name",
    "load_bound",
    "operator_settings",
    "register_block_types",
    "resolve",
    "resolve_generator",
    "resolve_repository",
    "resolve_target",
    "save_block",
    "shorthand_names",
]

Kind = Literal["generator", "repository", "target"]

PORTS: dict[Kind, type[Block]] = {
    "generator": Generator,
    "repository": RepositoryTarget,
    "target": DeploymentTarget,
}

NO_REPOSITORY = "none"
"""The repository reference that means: keep no repository."""


@dataclass(frozen=True)
class BlockType:
    """One Pom-Bolt Block type.

    Attributes:
        slug: The Prefect Block type slug (every one starts ``pombolt-``).
        role: The port the class implements.
        module: The module holding the class.
        class_name: The class's name in that module.
        shorthand: The built-in reference that stands for an unsaved Block of this type, if any.
        factory: The classmethod that builds that unsaved Block (default: the class with no arguments).
    """

    slug: str
    role: Kind
    module: str
    class_name: str
    shorthand: str | None = None
    factory: str | None = None

    def load(self) -> type[Block]:
        """Import the class (which also registers its slug with Prefect in this process).

        Raises:
            ImportError: When the class needs a package this install lacks.
        """
        cls: type[Block] = getattr(importlib.import_module(self.module), self.class_name)
        return cls

    def build(self) -> Block:
        """The unsaved Block the shorthand stands for, built from settings and the environment."""
        cls = self.load()
        make: Callable[[], Block] = getattr(cls, self.factory) if self.factory else cls
        return make()


BLOCK_TYPES: tuple[BlockType, ...] = (
    BlockType(
        "pombolt-offline-generator", "generator", "blocks.generators.offline", "OfflineTemplateGenerator", "offline"
    ),
    BlockType(
        "pombolt-openai-generator",
        "generator",
        "blocks.generators.openai_compat",
        "OpenAICompatibleGenerator",
        "openai",
        factory="from_env",
    ),
    BlockType("pombolt-local-git", "repository", "blocks.repositories.local_git", "LocalGitRepository", "local-git"),
    BlockType("pombolt-github-repository", "repository", "blocks.repositories.github", "GitHubRepositoryTarget"),
    BlockType("pombolt-git-remote", "repository", "blocks.repositories.git_remote", "GitRemoteTarget"),
    BlockType("pombolt-local-static-site", "target", "blocks.targets.local_static", "LocalStaticSite", "local-static"),
    BlockType("pombolt-netlify", "target", "blocks.targets.netlify", "NetlifySite"),
    BlockType("pombolt-s3-website", "target", "blocks.targets.s3_website", "S3Website"),
    BlockType("pombolt-cloudflare-pages", "target", "blocks.targets.cloudflare_pages", "CloudflarePagesSite"),
    BlockType("pombolt-vercel", "target", "blocks.targets.vercel", "VercelProject"),
    BlockType("pombolt-github-pages", "target", "blocks.targets.github_pages", "GitHubPagesSite"),
)

_BY_SLUG = {t.slug: t for t in BLOCK_TYPES}


def block_type(slug: str) -> BlockType | None:
    """The Pom-Bolt Block type with this slug, or None."""
    return _BY_SLUG.get(slug)


def block_classes() -> list[type[Block]]:
    """Every Pom-Bolt Block class that is importable in this install (in :data:`BLOCK_TYPES` order)."""
    found: list[type[Block]] = []
    for block_type_ in BLOCK_TYPES:
        try:
            found.append(block_type_.load())
        except (ImportError, AttributeError):
            continue
    return found


def register_block_types() -> list[str]:
    """Register every importable Block type and its schema with the Prefect API; return their slugs."""
    slugs = []
    for cls in block_classes():
        cls.register_type_and_schema()
        slugs.append(cls.get_block_type_slug())
    return slugs


# --- built-in shorthands ---------------------------------------------------------------------------
def _shorthands(kind: Kind) -> dict[str, BlockType]:
    return {t.shorthand: t for t in BLOCK_TYPES if t.role == kind and t.shorthand}


SHORTHANDS: dict[Kind, dict[str, Callable[[], Block]]] = {
    kind: {name: t.build for name, t in _shorthands(kind).items()} for kind in PORTS
}
"""Built-in reference → builder of its unsaved Block, per kind (a view of :data:`BLOCK_TYPES`)."""


def shorthand_names(kind: Kind) -> list[str]:
    """Built-in references for a kind of Block."""
    names = list(_shorthands(kind))
    return [*names, NO_REPOSITORY] if kind == "repository" else names


def builtin_slug(kind: Kind, ref: str) -> str | None:
    """The Block type slug a built-in reference stands for (``local-static`` → ``pombolt-local-static-site``).

    Nothing is imported or built, so this works without the environment a Block would need (an API key).

    Returns:
        The slug, or None when ``ref`` is not a built-in reference of that kind (``none`` included).
    """
    found = _shorthands(kind).get(ref)
    return found.slug if found is not None else None


# --- tenant Blocks ---------------------------------------------------------------------------------
_TENANT_DIGEST = 16
"""Hex digits of SHA-256(tenant id) in a document name (64 bits)."""


def document_name(tenant_id: str, name: str) -> str:
    """The Prefect Block document name a tenant's Block ``name`` is saved under.

    ``t-<first 16 hex of sha256(tenant_id)>-<name>``: lowercase letters, digits and dashes, as Prefect wants.
    A fixed-length digest then the name: two (tenant, name) pairs share a document name only when their
    tenants' digests collide.

    Raises:
        ConfigError: When ``name`` breaks the name rule.
    """
    return _document_name(tenant_id, check_name(name))


def _document_name(tenant_id: str, name: str) -> str:
    digest = hashlib.sha256(tenant_id.encode("utf-8")).hexdigest()[:_TENANT_DIGEST]
    return f"t-{digest}-{name}"


def check_name(name: str) -> str:
    """Validate a Block name chosen by a tenant (the rule of :mod:`core.names`).

    Raises:
        ConfigError: When the name is not lowercase letters, digits and dashes.
    """
    return check_any_name(name, "Block name")


def operator_settings(block: Block) -> dict[str, str]:
    """The fields of ``block`` only the operator may set that it sets (field → why), e.g. a local ``root``.

    A tenant's API may not save such a Block; the local CLI tenant and the operator may (DESIGN §6).
    """
    return block.operator_settings() if isinstance(block, OperatorFields) else {}


def save_block(store: Store, tenant_id: str, name: str, block: Block) -> str:
    """Save a Block as the tenant's ``name`` (replacing an earlier one) and return its document name.

    Raises:
        ConfigError: When ``name`` breaks the name rule, or another tenant's binding already names the document
            it would be saved as (a digest collision; nothing is saved).
    """
    doc = document_name(tenant_id, name)
    slug = block.get_block_type_slug()
    if store.document_shared(tenant_id, slug, doc):
        raise ConfigError(f"Block name {name!r} cannot be used by this tenant; choose another name", field="name")
    earlier = store.find_block(tenant_id, name)
    block.save(doc, overwrite=True)
    if earlier is not None and (earlier.slug, earlier.document_name) != (slug, doc):
        # the document it replaces (another type, or an older naming rule) goes before the binding moves (a
        # failure leaves the binding for a retry), so nothing resolves to it again: not this tenant, nor
        # another whose binding met it there under the older rule
        _delete_document(earlier.slug, earlier.document_name)
    store.bind_block(tenant_id, name, slug, doc)
    return doc


def _delete_document(slug: str, name: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            found = client.read_block_document_by_name(name=name, block_type_slug=slug, include_secrets=False)
            client.delete_block_document(found.id)
        except ObjectNotFound:
            pass  # already gone


def resolve(kind: Kind, ref: str, *, tenant_id: str, store: Store) -> Block | None:
    """Return the Block a reference names, or None for ``--repository none``.

    Raises:
        UnknownBlock: When the tenant owns no Block by that name, or it is of the wrong kind.
    """
    if kind == "repository" and ref == NO_REPOSITORY:
        return None
    builtin = _shorthands(kind).get(ref)
    if builtin is not None:
        return builtin.build()
    binding = store.find_block(tenant_id, ref)
    if binding is None:
        choices = ", ".join(shorthand_names(kind))
        raise UnknownBlock(
            f"no {kind} Block named {ref!r}; save one first (PUT /api/blocks/SLUG/{ref} or "
            f"'pombolt blocks save') or use a built-in: {choices}"
        )
    block = load_bound(store, binding, kind)
    if not isinstance(block, PORTS[kind]):
        raise UnknownBlock(f"Block {ref!r} is a {binding.slug}, which cannot be used as a {kind}")
    return block


def load_bound(store: Store, binding: BlockBinding, kind: str = "Block") -> Block:
    """Load the Block document a tenant's binding names (the one way a tenant's saved Block is read).

    Raises:
        UnknownBlock: When the document is gone, its type is not installed, or it was saved under the older
            naming rule and another tenant's binding names the same document (it may hold either's fields).
    """
    if binding.document_name != _document_name(binding.tenant_id, binding.name) and store.document_shared(
        binding.tenant_id, binding.slug, binding.document_name
    ):
        raise UnknownBlock(
            f"{kind} Block {binding.name!r} shares its Prefect document with another tenant's Block (saved before "
            f"tenant namespaces were fixed); save it again (PUT /api/blocks/{binding.slug}/{binding.name})"
        )
    _import_class(binding.slug)  # a fresh worker process knows none of our slugs until the class is imported
    try:
        block: Block = Block.load(f"{binding.slug}/{binding.document_name}")  # type: ignore[assignment]
    except ValueError as exc:
        raise UnknownBlock(
            f"{kind} Block {binding.name!r} is registered but its document is gone; save it again"
        ) from exc
    return block


def _import_class(slug: str) -> None:
    found = block_type(slug)
    if found is None:
        block_classes()  # not one of ours: import them all, in case a class registers it
        return
    try:
        found.load()
    except ImportError as exc:
        raise UnknownBlock(f"Block type {slug} needs a package this install lacks ({exc.name})") from exc


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
