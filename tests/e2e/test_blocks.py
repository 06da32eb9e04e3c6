"""Test-only Blocks: real Blocks that stand in for an outside service's behaviour.

``CountingGenerator`` is the offline generator plus a call counter kept in a file (so a test can see
how many times generation really ran, across processes). ``FlakyStaticSite`` is a local static site
whose host "fails" the first N deploys, the way a provider outage would.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from blocks.generators.base import GenerationRequest, GenerationResult
from blocks.generators.offline import OfflineTemplateGenerator
from blocks.targets.base import DeployRequest, DeployResult, SiteState
from blocks.targets.local_static import LocalStaticSite
from core.errors import DeployFailed
from core.snapshots import SnapshotStore


def _bump(path: str) -> int:
    counter = Path(path)
    n = int(counter.read_text() or "0") + 1 if counter.exists() else 1
    counter.write_text(str(n))
    return n


class CountingGenerator(OfflineTemplateGenerator):
    """Offline generator that counts its calls in ``counter_file``."""

    _block_type_name = "Pom-Bolt Test Counting Generator"
    _block_type_slug = "pombolt-test-counting-generator"

    counter_file: str = Field(description="File holding the number of generate calls.")

    def generate(self, request: GenerationRequest) -> GenerationResult:
        _bump(self.counter_file)
        return super().generate(request)


class FlakyStaticSite(LocalStaticSite):
    """Local static site whose first ``failures`` deploys fail like a provider outage."""

    _block_type_name = "Pom-Bolt Test Flaky Static Site"
    _block_type_slug = "pombolt-test-flaky-static-site"

    counter_file: str = Field(description="File holding the number of deploy attempts.")
    failures: int = Field(1, description="How many deploys fail before they work.")

    def deploy(self, snapshots: SnapshotStore, request: DeployRequest, state: SiteState) -> DeployResult:
        if _bump(self.counter_file) <= self.failures:
            raise DeployFailed("test host: deploy rejected (simulated outage)")
        return super().deploy(snapshots, request, state)


def calls(path: Path) -> int:
    """How many times a counter was bumped."""
    return int(path.read_text()) if path.exists() else 0
