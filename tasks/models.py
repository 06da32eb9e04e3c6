"""What phase tasks return: small pydantic models holding ids and counts, never file bytes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from blocks.generators.base import Usage
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
    usage: Usage = Field(default_factory=Usage, description="What producing it cost.")
    label: str = ""
    repair_rounds: int = 0


class PreflightReport(BaseModel):
    """Which Blocks were checked."""

    checked: list[str]


class VerifyResult(BaseModel):
    """How the live site was verified."""

    url: str
    index_sha256: str
    attempts: int
    seconds: float
