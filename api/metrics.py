"""Prometheus metrics of the API: request counts, plus runs, phases, outbox and per-target outcomes read
from the state store at each scrape."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

from blocks.catalog import builtin_slug
from core.models import RunStatus
from core.store import Store

OUTCOMES = (RunStatus.verified, RunStatus.failed)


def target_outcomes(store: Store) -> dict[tuple[str, str], int]:
    """Finished runs (verified or failed) by the target Block's type slug and outcome, all tenants.

    A tenant's saved target counts under its Block's slug (``pombolt-s3-website``); a built-in reference
    under the built-in Block's slug; a reference whose Block was since removed under ``unknown``.
    """
    out: dict[tuple[str, str], int] = {}
    for ref, slug, status, n in store.runs_by_target(OUTCOMES):
        key = (slug or builtin_slug("target", ref) or "unknown", status.value)
        out[key] = out.get(key, 0) + n
    return out


class StoreCollector(Collector):
    """Reads run and phase figures from the state store at each scrape."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        """Runs by status, outbox depth and phase durations."""
        counts = self.store.count_runs_by_status()
        runs = GaugeMetricFamily("pombolt_runs", "Runs by status.", labels=["status"])
        for status, n in sorted(counts.items()):
            runs.add_metric([status], n)
        yield runs
        yield GaugeMetricFamily(
            "pombolt_outbox_depth", "Runs queued and not yet handed to Prefect.", value=counts.get("queued", 0)
        )
        phases = SummaryMetricFamily("pombolt_phase_duration_seconds", "Duration of finished phases.", labels=["phase"])
        for phase, (n, total) in sorted(self.store.phase_durations().items()):
            phases.add_metric([phase], count_value=n, sum_value=total)
        yield phases
        yield from self._targets()

    def _targets(self) -> Iterator[Metric]:
        outcomes = target_outcomes(self.store)
        runs = CounterMetricFamily(
            "pombolt_target_runs", "Finished runs by target Block type and outcome.", labels=["target", "outcome"]
        )
        ratio = GaugeMetricFamily(
            "pombolt_target_success_ratio", "Share of finished runs that were verified, by target.", labels=["target"]
        )
        for (target, outcome), n in sorted(outcomes.items()):
            runs.add_metric([target, outcome], n)
        for target in sorted({t for t, _ in outcomes}):
            ok, bad = outcomes.get((target, "verified"), 0), outcomes.get((target, "failed"), 0)
            ratio.add_metric([target], ok / (ok + bad))
        yield runs
        yield ratio


def make_registry(store: Store) -> tuple[CollectorRegistry, Counter]:
    """A registry for one app (so several apps in one process never collide) and its request counter."""
    registry = CollectorRegistry()
    requests = Counter("pombolt_api_requests", "API requests.", ["method", "route", "status"], registry=registry)
    registry.register(StoreCollector(store))
    return registry, requests
