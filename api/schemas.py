"""Request and response bodies of the public API.

The body of ``POST /api/requirements`` is the use case's own model, :class:`usecases.submit.Submission`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class Accepted(BaseModel):
    """Answer of ``POST /api/requirements`` and of retry."""

    project_id: str
    run_id: str
    status: str
    status_url: str = Field(
        description="Where to poll the project: absolute on POMBOLT_API_PUBLIC_URL when that is set, else a path "
        "relative to the API's origin (never built from the request's Host header)."
    )


class ErrorOut(BaseModel):
    """Why a run failed."""

    phase: str | None
    code: str
    message: str | None
    retryable: bool | None


class PhaseOut(BaseModel):
    """One phase of a run."""

    name: str
    status: str
    cached: bool
    started_at: datetime
    ended_at: datetime | None
    seconds: float | None


class SpendOut(BaseModel):
    """What a run cost."""

    llm_calls: int
    prompt_tokens: int
    completion_tokens: int


class RunOut(BaseModel):
    """A run with its phases, links and error."""

    id: str
    kind: str
    status: str
    phase: str | None
    requirements: str
    request_id: str
    created_at: datetime
    finished_at: datetime | None
    phases: list[PhaseOut]
    repository_url: str | None
    commit_sha: str | None
    live_url: str | None
    flow_run_id: str | None
    prefect_url: str | None
    spend: SpendOut
    error: ErrorOut | None


class ChangeIn(BaseModel):
    """Body of ``POST /api/projects/{id}/changes``."""

    request: str = Field(min_length=1, max_length=20_000, description="What to change, in plain words.")


class RollbackIn(BaseModel):
    """Body of ``POST /api/projects/{id}/rollback``."""

    version: int = Field(ge=1, description="The version number to put live again.")


class VersionOut(BaseModel):
    """What a verified run put live."""

    number: int
    run_id: str
    snapshot_id: str
    commit_sha: str | None
    live_url: str
    created_at: datetime


class ProjectSummary(BaseModel):
    """A project in a list."""

    id: str
    name: str
    status: str | None
    created_at: datetime
    live_url: str | None


class ProjectOut(ProjectSummary):
    """A project with its latest run and versions."""

    generator: str
    repository: str
    target: str
    repository_url: str | None
    latest_run: RunOut | None
    versions: list[VersionOut]


class ProjectPage(BaseModel):
    """A page of projects."""

    items: list[ProjectSummary]
    offset: int
    limit: int


class FileOut(BaseModel):
    """One file of a snapshot manifest."""

    path: str
    sha256: str
    size: int
    mode: str


class FilesOut(BaseModel):
    """The manifest of a project's latest snapshot."""

    snapshot_id: str
    files: list[FileOut]


class CancelOut(BaseModel):
    """Answer of cancel."""

    run_id: str
    status: str


class BlockOut(BaseModel):
    """A tenant's saved Block; secrets only as set/unset."""

    name: str
    slug: str
    fields: dict[str, Any]
    secrets: dict[str, str] = Field(description="Secret field -> 'set' or 'unset'.")


class HealthOut(BaseModel):
    """Reachability of what the API depends on."""

    status: str
    database: str
    prefect: str
