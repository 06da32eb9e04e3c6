"""Prometheus metrics of the API: request counts, plus runs, phases and outbox read from the state store."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

from core.store import Store


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


def make_registry(store: Store) -> tuple[CollectorRegistry, Counter]:
    """A registry for one app (so several apps in one process never collide) and its request counter."""
    registry = CollectorRegistry()
    requests = Counter("pombolt_api_requests", "API requests.", ["method", "route", "status"], registry=registry)
    registry.register(StoreCollector(store))
    return registry, requests
