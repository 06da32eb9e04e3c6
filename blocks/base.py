"""What the two provider ports share: the state a project owns at a provider, the ids a run works from, the
Block a state belongs to, and the fields only the operator may set.

:class:`~blocks.repositories.base.RepositoryState` and :class:`~blocks.targets.base.SiteState` add the
provider's id of the repository or site; :class:`~blocks.repositories.base.PublishRequest` and
:class:`~blocks.targets.base.DeployRequest` add the snapshot to publish or deploy.

**Provider state is bound to the Block that made it.** A project keeps what it owns at a provider (a site id,
a repository id) to reuse it on the next run. That state is only meaningful to the Block that wrote it: a
site id a Netlify Block (or a fake Netlify API) answered means nothing to a local static site, and must not be
handed to one. So the phase stamps every state it saves with :func:`block_identity` (the Block reference,
the Block type and the saved document's id), and a phase whose Block has another identity — another type,
the same name saved again as another type, another document — starts from a fresh state
(:meth:`ProviderState.for_block`).

**Operator-only fields.** Some fields name a resource on the worker's machine: a folder (``root``), a local
server, a local repository. Only the operator (and the trusted local CLI tenant, DESIGN §6) may set them; a
Block declares them in ``_operator_fields`` and :meth:`OperatorFields.operator_settings` says which of them a
Block sets. The API refuses to save a tenant's Block that sets one.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar, Self

from prefect.blocks.core import Block
from pydantic import BaseModel, Field

__all__ = ["OperatorFields", "ProviderRequest", "ProviderState", "block_identity"]


def block_identity(block: Block, ref: str) -> str:
    """A digest naming the Block a provider state belongs to.

    It covers the reference the project uses (a tenant's Block name or a built-in shorthand), the Block type
    slug and the id of the saved Block document (``unsaved`` for a shorthand's unsaved Block). Saving a Block
    again under the same name and type keeps its document, hence its identity (a rotated token keeps the
    site); another type, or a document deleted and made again, is another identity.
    """
    document = getattr(block, "_block_document_id", None)
    parts = (ref, block.get_block_type_slug() or "", str(document) if document else "unsaved")
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


class ProviderState(BaseModel):
    """What a project owns at a provider; kept on the project, passed in and out of every call."""

    url: str | None = None
    created_by_run: str | None = Field(
        None, description="The run that created the resource; compensation removes only what a run created."
    )
    block: str | None = Field(
        None, description="block_identity() of the Block that made this state (set by the phase)."
    )
    extra: dict[str, Any] = Field(default_factory=dict)

    def made_by(self, identity: str) -> bool:
        """Whether the Block with this identity made the state (an unstamped state belongs to no Block)."""
        return self.block is not None and self.block == identity

    @classmethod
    def for_block(cls, saved: dict[str, Any] | None, identity: str) -> Self:
        """The project's saved state when the Block with ``identity`` made it, else a fresh state.

        A state another Block made (another type, another document), or one saved before states were
        stamped, is never handed to this Block: it starts as for a new project.
        """
        state = cls.model_validate(saved or {})
        return state if state.made_by(identity) else cls()


class ProviderRequest(BaseModel):
    """Ids a publish or a deploy works from."""

    tenant_id: str
    project_id: str
    project_name: str
    run_id: str


class OperatorFields:
    """Mixin of the provider ports: fields that name a resource on the worker, which only the operator sets."""

    #: Fields that name a folder, a local repository or a local server on the worker.
    _operator_fields: ClassVar[tuple[str, ...]] = ()

    def operator_settings(self) -> dict[str, str]:
        """The operator-only fields this Block sets, each with why a tenant may not set it.

        By default a field of ``_operator_fields`` counts when it holds anything but None or ``""``; a Block
        whose field is operator-only for some values only (a ``file://`` remote) overrides this.
        """
        return {
            name: f"{name!r} names a resource on the worker's machine, which only the operator may set; leave it "
            "out to use the operator's default"
            for name in self._operator_fields
            if getattr(self, name, None) not in (None, "")
        }
