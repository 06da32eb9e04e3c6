"""The Generator port: requirements in, untrusted files out."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from typing import ClassVar

from prefect.blocks.core import Block
from pydantic import BaseModel, Field, SecretStr

from core.files import GeneratedFile


class Usage(BaseModel):
    """What a generation cost."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            calls=self.calls + other.calls,
        )


class GenerationRequest(BaseModel):
    """What a generator is asked for."""

    requirements: str = Field(description="The user's requirements (untrusted text).")
    project_name: str = Field(description="Human name of the project.")
    change_request: str | None = Field(None, description="For change runs: what to change.")
    current_files: list[GeneratedFile] = Field(default_factory=list, description="Files of the live version.")


class GenerationResult(BaseModel):
    """Files produced by a generator (not yet validated) and what they cost."""

    files: list[GeneratedFile]
    deleted: list[str] = Field(default_factory=list, description="Paths a change run removes.")
    usage: Usage = Field(default_factory=Usage)
    label: str = Field("", description="Where the files came from, e.g. 'offline template'.")


class Generator(Block, ABC):
    """A Block that turns requirements into files."""

    _block_schema_capabilities: ClassVar[list[str]] = ["generate"]

    def preflight(self) -> None:
        """Check credentials and reachability without paying for anything."""

    @abstractmethod
    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Produce the files of a project."""

    def repair(
        self, request: GenerationRequest, files: list[GeneratedFile], problems: dict[str, str]
    ) -> GenerationResult:
        """Return replacements for files that failed checks (default: none; the check fails)."""
        return GenerationResult(files=[], label="no repair")

    def fingerprint(self) -> str:
        """A hash of the non-secret configuration, for cache keys."""
        return config_fingerprint(self)


def config_fingerprint(block: Block) -> str:
    """SHA-256 of a Block's type and non-secret fields (secrets never enter a cache key)."""
    data = {
        name: value
        for name, value in block.model_dump(mode="json").items()
        if not isinstance(getattr(block, name, None), SecretStr) and not name.startswith("_")
    }
    data["__type__"] = block.get_block_type_slug()
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
