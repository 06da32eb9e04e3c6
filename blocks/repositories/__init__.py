"""Repository Blocks."""

from blocks.repositories.base import PublishRequest, PublishResult, RepositoryState, RepositoryTarget

__all__ = ["PublishRequest", "PublishResult", "RepositoryState", "RepositoryTarget"]
