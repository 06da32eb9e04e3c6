"""A fake provider with Prism (and the provider's contract) in front of it, for the hosted targets' tests.

The Block talks to a :class:`~tests.fakes.netlify.PrismBinaryBypass` front: every call goes through
``prism proxy <contract> <fake> --errors`` except uploads whose body is not UTF-8 (Prism mangles those).
:meth:`PrismStack.problems` returns what Prism (or the front) reported since the last call, so a test can fail
on any request or response that breaks the contract.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Generic, TypeVar

from tests.conftest import require_prism
from tests.fakes.netlify import PrismBinaryBypass
from tests.fakes.prism import PrismLog, PrismProxy, contracts_dir

F = TypeVar("F")


class PrismStack(Generic[F]):
    """The fake, Prism in front of it, the front the Block talks to, and how far Prism's log was checked."""

    def __init__(self, fake: F, prism: PrismProxy, front: PrismBinaryBypass) -> None:
        self.fake, self.prism, self.front = fake, prism, front
        self.log = PrismLog(prism)

    @property
    def api_url(self) -> str:
        """What the Block's api_url is: the front (Prism's routes)."""
        return self.front.url

    def problems(self) -> list[str]:
        """What Prism and the front reported since the last call."""
        found = self.log.new_problems() + self.front.violations
        self.front.violations.clear()
        return found


@contextmanager
def prism_stack(fake: F, contract: str, upstream: str, log_dir: Path) -> Iterator[PrismStack[F]]:
    """Put Prism with ``contract`` (a file of the contracts folder) and a bypass front before ``upstream``."""
    prism_bin = require_prism()
    with PrismProxy(contracts_dir() / contract, upstream, prism_bin, log_dir=log_dir) as proxy:
        with PrismBinaryBypass(proxy.url, upstream) as front:
            yield PrismStack(fake, proxy, front)
