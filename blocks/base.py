"""What the two provider ports share: the state a project owns at a provider and the ids a run works from.

:class:`~blocks.repositories.base.RepositoryState` and :class:`~blocks.targets.base.SiteState` add the
provider's id of the repository or site; :class:`~blocks.repositories.base.PublishRequest` and
:class:`~blocks.targets.base.DeployRequest` add the snapshot to publish or deploy.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = ["ProviderRequest", "ProviderState"]


class ProviderState(BaseModel):
    """What a project owns at a provider; kept on the project, passed in and out of every call."""

    url: str | None = None
    created_by_run: str | None = Field(
        None, description="The run that created the resource; compensation removes only what a run created."
    )
    extra: dict[str, Any] = Field(default_factory=dict)


class ProviderRequest(BaseModel):
    """Ids a publish or a deploy works from."""

    tenant_id: str
    project_id: str
    project_name: str
    run_id: str
