"""What phase tasks return: small pydantic models holding ids and counts, never file bytes.

Each result carries what the next phase needs, so the flow passes results on and reads nothing itself:
generate → :class:`GenerationRef` (check reads the generation by id), check → :class:`GenerationRef` (store
writes it), store → :class:`~core.snapshots.SnapshotRef` (publish and build read it), build → :class:`SiteRef`
(deploy puts it live; verify compares the served page with its ``index_sha256``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from blocks.generators.base import Usage
from blocks.generators.wire import WirePlan
from core.files import GeneratedFile


class GenerationRecord(BaseModel):
    """The full output of one generation, kept in storage (the thing we paid for)."""

    files: list[GeneratedFile]
    usage: Usage = Field(default_factory=Usage)
    label: str = ""
    repair_rounds: int = 0
    check_output: dict[str, str] = Field(default_factory=dict)


class GenerationRef(BaseModel):
    """A pointer to a stored generation."""

    model_config = ConfigDict(frozen=True)

    generation_id: str
    snapshot_id: str = Field(description="The id the files will have once stored.")
    file_count: int
    total_bytes: int
    usage: Usage = Field(default_factory=Usage, description="What producing it cost (already charged to the run).")
    label: str = ""
    repair_rounds: int = 0


class PlanRecord(BaseModel):
    """A stored plan and what it cost."""

    plan: WirePlan
    usage: Usage = Field(default_factory=Usage)


class PlanRef(BaseModel):
    """A pointer to a stored plan."""

    plan_id: str
    paths: list[str]
    usage: Usage = Field(default_factory=Usage)


class BaseVersion(BaseModel):
    """The version a change run builds on (its snapshot is looked up by the generate task)."""

    model_config = ConfigDict(frozen=True)

    project_id: str
    number: int


class PreflightReport(BaseModel):
    """Which Blocks were checked."""

    checked: list[str]


class SiteRef(BaseModel):
    """A site snapshot: what deploy puts live and verify compares with."""

    model_config = ConfigDict(frozen=True)

    snapshot_id: str
    file_count: int
    total_bytes: int
    index_sha256: str | None = Field(description="SHA-256 of the site's index.html (None: the site has none).")
    built: bool = Field(False, description="True when an npm build made it; False when the source is the site.")


class VerifyResult(BaseModel):
    """How the live site was verified."""

    url: str
    index_sha256: str
    attempts: int
    seconds: float
