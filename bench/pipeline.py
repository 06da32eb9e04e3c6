"""The pipeline's own cost: ``pombolt run`` on embedded defaults vs a bare Prefect flow of 8 tasks.

Both run in this process on Prefect's temporary local server, in a throwaway data dir and Prefect home.
Ours is ``pombolt run --json`` through typer's CliRunner (the offline generator, local git, the local
static site, real HTTP verification); the bare flow runs 8 trivial tasks with persisted results. Each
is measured cold (new requirements / new parameters: nothing cached) and fully cached (the same input
again), after one unmeasured warm-up of each (the server start). Usage, from the repo root::

    .venv/bin/python -m bench.pipeline [RUNS]
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable
from functools import partial

from bench._common import cleanup, isolate, machine, median, p95, pombolt_run

ROOT = isolate("pipeline")

from prefect import flow, task  # noqa: E402 - Prefect reads the environment isolate() set, at import
from prefect.cache_policies import INPUTS, TASK_SOURCE  # noqa: E402

TASKS = 8  # preflight, generate, check, store, publish, build, deploy, verify
TOPICS = ["pomodoro timer", "todo list", "unit converter", "tip calculator", "habit tracker", "flash cards"]


@task(persist_result=True, cache_policy=INPUTS + TASK_SOURCE)
def step(index: int, seed: str) -> str:
    """A trivial task whose result is persisted and cached on its inputs."""
    return f"{seed}:{index}"


@flow(name="bench-bare-flow")
def bare_flow(seed: str) -> list[str]:
    """Eight trivial tasks in sequence, like the pipeline's eight phases."""
    return [step(i, seed) for i in range(TASKS)]


def timed(call: Callable[[], object]) -> float:
    """Seconds one call takes."""
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def ours(requirements: str, name: str, *, expect_cached: bool) -> float:
    """Time one ``pombolt run``; check the cached runs really were cached before deploy."""
    started = time.perf_counter()
    report = pombolt_run(requirements, "--name", name)
    took = time.perf_counter() - started
    cached = {p["name"] for p in report["phases"] if p["cached"]}
    if expect_cached and not {"generate", "check", "store", "publish", "build"} <= cached:
        raise RuntimeError(f"re-run of {name} was not cached: {report['phases']}")
    if not expect_cached and cached - {"preflight"}:  # preflight is keyed on the Blocks alone, by design
        raise RuntimeError(f"cold run of {name} hit the cache: {sorted(cached)}")
    return took


def main(runs: int = 5) -> None:
    """Measure and print the table and a one-line summary."""
    try:
        print(machine())
        t0 = time.perf_counter()
        bare_flow("warm-up")
        warm_bare = time.perf_counter() - t0
        warm_ours = ours("a warm-up counter", "warm-up", expect_cached=False)
        print(f"warm-up (server start, first flow): bare {warm_bare:.2f}s, ours {warm_ours:.2f}s (not counted)")

        names = [f"bench-{i}-{uuid.uuid4().hex[:6]}" for i in range(runs)]
        reqs = [f"a {TOPICS[i % len(TOPICS)]} (bench {name})" for i, name in enumerate(names)]
        seeds = [uuid.uuid4().hex for _ in range(runs)]
        rows: dict[str, list[float]] = {"ours cold": [], "ours cached": [], "bare cold": [], "bare cached": []}
        for again, suffix in ((False, "cold"), (True, "cached")):  # interleaved, so load swings hit both alike
            for req, name, seed in zip(reqs, names, seeds, strict=True):
                rows[f"ours {suffix}"].append(ours(req, name, expect_cached=again))
                rows[f"bare {suffix}"].append(timed(partial(bare_flow, seed)))
        print(f"\n{'case':<13}{'runs':>5}{'median s':>10}{'p95 s':>8}{'min s':>8}  every run, s")
        for label, values in rows.items():
            every = " ".join(f"{v:.2f}" for v in values)
            print(f"{label:<13}{len(values):>5}{median(values):>10.2f}{p95(values):>8.2f}{min(values):>8.2f}  {every}")
        cold = median(rows["ours cold"]) / median(rows["bare cold"])
        warm = median(rows["ours cached"]) / median(rows["bare cached"])
        print(f"{'ratio cold':<13}{'':>5}{cold:>10.2f}x   (median ours / median bare)")
        print(f"{'ratio cached':<13}{'':>5}{warm:>10.2f}x")
        print(
            f"\nsummary: pombolt run (8 phases, embedded defaults) takes {median(rows['ours cold']):.2f}s cold and "
            f"{median(rows['ours cached']):.2f}s cached (median of {runs}), {cold:.1f}x / {warm:.1f}x a bare "
            f"{TASKS}-task Prefect flow ({median(rows['bare cold']):.2f}s / {median(rows['bare cached']):.2f}s)"
        )
        print(f"p95 is by nearest rank; load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        cleanup(ROOT)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
