"""Test-only generator Blocks: real Blocks implementing the port, answering from their configuration.

``ScriptedGenerator`` answers ``generate`` with ``files``, ``repair`` with ``fixes``, and reports a paid call
for each answer when ``max_output_tokens`` is set (as a paid generator would). ``PlanningScript`` can also plan
an app and write it one file per call. What a generator was asked shows in what it answers (``asked.txt``).
"""

from __future__ import annotations

from pydantic import Field

from blocks.generators.base import GenerationRequest, GenerationResult, Generator, Usage
from blocks.generators.wire import PlannedFile, WirePlan
from core.files import GeneratedFile

TOKENS_PER_ANSWER = 7


class ScriptedGenerator(Generator):
    """Answers with the files and fixes it was configured with."""

    _block_type_name = "Pom-Bolt Test Scripted Generator"
    _block_type_slug = "pombolt-test-scripted-generator"

    files: dict[str, str] = Field(
        default_factory=lambda: {"index.html": "<h1>scripted</h1>\n"}, description="What generate answers."
    )
    fixes: dict[str, str] = Field(default_factory=dict, description="What repair answers.")
    max_output_tokens: int = Field(0, description="Most tokens an answer may use (0: the generator is free).")

    def worst_case_tokens(self) -> int:
        """A paid generator's bound: ``max_output_tokens`` per answer, generation and repairs."""
        return self.max_output_tokens * (1 + self.max_repair_rounds)

    def _usage(self) -> Usage:
        if not self.max_output_tokens:
            return Usage()
        return Usage(calls=1, prompt_tokens=3, completion_tokens=TOKENS_PER_ANSWER)

    def generate(self, request: GenerationRequest) -> GenerationResult:
        asked = f"requirements={request.requirements}\nchange={request.change_request}\n"
        asked += "current=" + ",".join(sorted(f.path for f in request.current_files)) + "\n"
        files = [GeneratedFile.text(path, text) for path, text in self.files.items()]
        return GenerationResult(
            files=[*files, GeneratedFile.text("asked.txt", asked)], usage=self._usage(), label="scripted"
        )

    def repair(
        self, request: GenerationRequest, files: list[GeneratedFile], problems: dict[str, str]
    ) -> GenerationResult:
        fixed = [GeneratedFile.text(path, text) for path, text in self.fixes.items() if path in problems]
        return GenerationResult(files=fixed, usage=self._usage(), label="scripted repair")


class PlanningScript(ScriptedGenerator):
    """A scripted generator that plans its files first and writes them one per call."""

    _block_type_name = "Pom-Bolt Test Planning Script"
    _block_type_slug = "pombolt-test-planning-script"

    def wants_plan(self, request: GenerationRequest) -> bool:
        return True

    def plan(self, request: GenerationRequest) -> tuple[WirePlan, Usage]:
        planned = [PlannedFile(path=path, purpose="scripted") for path in self.files]
        return WirePlan(files=planned, notes=""), self._usage()

    def generate_file(self, request: GenerationRequest, plan: WirePlan, path: str) -> tuple[GeneratedFile, Usage]:
        return GeneratedFile.text(path, self.files[path]), self._usage()
