"""Generator Blocks."""

from blocks.generators.base import GenerationRequest, GenerationResult, Generator, Usage

__all__ = ["GenerationRequest", "GenerationResult", "Generator", "Usage"]
