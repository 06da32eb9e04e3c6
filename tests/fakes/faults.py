"""One seeded fault spec applied to every fake service, and what each fake's log says was injected.

A :class:`FaultSpec` is the shape of the faults (total rate, how it splits between kinds, Retry-After,
latency); :func:`apply_faults` turns it into one :class:`~tests.fakes.base.FaultPlan` per service, each
with its own seed derived from the spec's seed and the service's name, so adding a service does not
change the faults another one sees. :func:`fault_counts` reads the faults back from a fake's request log.

Example:
    spec = FaultSpec(seed=7, rate=0.3)
    apply_faults({"github": gh, "netlify": nf}, spec, overrides={"github": {"truncate": 0.0}})
    ...
    assert 0.2 < fault_counts(gh).share < 0.4
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from tests.fakes.base import FakeService, FaultPlan

__all__ = ["DEFAULT_MIX", "FaultCounts", "FaultSpec", "apply_faults", "fault_counts"]

#: How a fault rate splits between kinds: HTTP statuses (as ints) and "drop" / "truncate".
DEFAULT_MIX: Mapping[int | str, float] = {429: 0.3, 502: 0.15, 503: 0.35, "drop": 0.1, "truncate": 0.1}


@dataclass(frozen=True)
class FaultSpec:
    """A seeded fault mix for every service.

    Attributes:
        seed: Base seed; each service's plan is seeded with ``seed`` mixed with the service's name.
        rate: Share of requests that get a fault (0..1).
        mix: Weights of the fault kinds (statuses, ``"drop"``, ``"truncate"``); normalised to ``rate``.
        retry_after: Seconds in ``Retry-After`` of 429/503 faults (None: no header).
        latency: (min, max) seconds added to every request.
    """

    seed: int = 0
    rate: float = 0.3
    mix: Mapping[int | str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    retry_after: float | None = 1.0
    latency: tuple[float, float] = (0.0, 0.0)

    def plan(self, service: str, **changes: float | None) -> FaultPlan:
        """The plan of one service.

        Args:
            service: Name of the service (it seeds the plan).
            **changes: Per-kind weight overrides for this service (``truncate=0.0`` switches truncation
                off; the other kinds then share the whole rate), and ``retry_after``.

        Returns:
            A fresh FaultPlan (its counters at zero).
        """
        retry_after = changes.pop("retry_after", self.retry_after)
        weights: dict[int | str, float] = {**self.mix}
        for kind, weight in changes.items():
            weights[int(kind) if kind.isdigit() else kind] = float(weight or 0.0)
        total = sum(weights.values())
        if total <= 0:
            raise ValueError(f"the fault mix of {service} has no kind with a weight above 0")
        share = {kind: self.rate * weight / total for kind, weight in weights.items()}
        return FaultPlan(
            seed=self.seed ^ zlib.crc32(service.encode()),
            rates={int(k): v for k, v in share.items() if isinstance(k, int)},
            retry_after=retry_after,
            latency=self.latency,
            drop_rate=share.get("drop", 0.0),
            truncate_rate=share.get("truncate", 0.0),
        )


def apply_faults(
    services: Mapping[str, FakeService],
    spec: FaultSpec,
    overrides: Mapping[str, Mapping[str, float | None]] | None = None,
) -> dict[str, FaultPlan]:
    """Give every service its plan from ``spec`` (replacing any plan it had).

    Args:
        services: Name -> running fake.
        spec: The shared fault spec.
        overrides: Name -> per-kind weight overrides (see :meth:`FaultSpec.plan`).

    Returns:
        Name -> the plan now applied.
    """
    plans = {}
    for name, service in services.items():
        plans[name] = spec.plan(name, **dict((overrides or {}).get(name, {})))
        service.set_fault_plan(plans[name])
    return plans


@dataclass(frozen=True)
class FaultCounts:
    """What a fake's request log says about injected faults.

    Attributes:
        requests: Requests the fake received.
        by_kind: Faults per kind ("429", "503", "drop", "truncate", ...).
    """

    requests: int
    by_kind: Mapping[str, int]

    @property
    def faults(self) -> int:
        """Requests that got a fault."""
        return sum(self.by_kind.values())

    @property
    def share(self) -> float:
        """Faulted requests / all requests (0 when there were none)."""
        return self.faults / self.requests if self.requests else 0.0

    def line(self, name: str) -> str:
        """One summary line, e.g. ``github: 212 requests, 63 faulted (29.7 %): 429=15 503=17 ...``."""
        kinds = " ".join(f"{kind}={count}" for kind, count in sorted(self.by_kind.items()))
        return f"{name}: {self.requests} requests, {self.faults} faulted ({self.share:.1%}): {kinds}"


def fault_counts(service: FakeService, path_re: str | None = None) -> FaultCounts:
    """Count the requests and injected faults in a fake's log (optionally only paths matching a regex)."""
    log = service.requests(path_re=path_re)
    return FaultCounts(len(log), dict(Counter(entry.faulted for entry in log if entry.faulted)))
