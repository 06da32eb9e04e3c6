"""The Generator port: requirements in, untrusted files out.

Everything a phase task needs to know about a generator is asked here, never guessed: what one generation
may cost at worst (:meth:`Generator.worst_case_tokens`, checked against budgets before any paid call), how
many repair rounds failing files get (:attr:`Generator.max_repair_rounds`), and whether it can plan a larger
app and write it one file per call (:class:`PlanningGenerator`).
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from typing import ClassVar, Protocol, runtime_checkable

from prefect.blocks.core import Block
from pydantic import BaseModel, Field, SecretStr

from blocks.generators.wire import WirePlan
from core.files import GeneratedFile

__all__ = [
    "GenerationRequest",
    "GenerationResult",
    "Generator",
    "PlanningGenerator",
    "Usage",
    "config_fingerprint",
]


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

    @property
    def free(self) -> bool:
        """Whether nothing was spent (no call, no token)."""
        return not (self.calls or self.prompt_tokens or self.completion_tokens)


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

    max_repair_rounds: int = Field(
        0,
        ge=0,
        le=5,
        title="Repair rounds",
        description="Times files that fail the checks go back to the generator with the check output (0: none).",
    )

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

    def worst_case_tokens(self) -> int:
        """The most tokens one generation may spend, its repair rounds included (0: it costs nothing).

        Budgets are checked against this before any paid call; a generator that pays overrides it.
        """
        return 0

    def fingerprint(self) -> str:
        """A hash of the non-secret configuration, for cache keys."""
        return config_fingerprint(self)


@runtime_checkable
class PlanningGenerator(Protocol):
    """A generator that can plan a larger app, then write it one file per call (one task per file)."""

    def wants_plan(self, request: GenerationRequest) -> bool:
        """Whether this request is large enough to plan first (the generator's size rule)."""
        ...

    def plan(self, request: GenerationRequest) -> tuple[WirePlan, Usage]:
        """The file list with purposes, and what asking for it cost."""
        ...

    def generate_file(self, request: GenerationRequest, plan: WirePlan, path: str) -> tuple[GeneratedFile, Usage]:
        """One planned file, and what writing it cost."""
        ...


def config_fingerprint(block: Block) -> str:
    """SHA-256 of a Block's type and non-secret fields (secrets never enter a cache key)."""
    data = {
        name: value
        for name, value in block.model_dump(mode="json").items()
        if not isinstance(getattr(block, name, None), SecretStr) and not name.startswith("_")
    }
    data["__type__"] = block.get_block_type_slug()
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
