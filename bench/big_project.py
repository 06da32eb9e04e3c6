"""A 1,000-file, 20 MB project through the whole pipeline, beside plain ``git commit`` and a plain copy.

A test-only generator Block (below) makes deterministic pseudo-random files — mostly text, some binary,
an ``index.html`` at the root that links only to files that exist — and is saved as the tenant's
``bench-big`` Block, so ``pombolt run --json`` (typer's CliRunner, in this process, on Prefect's
temporary local server, local git and the local static site) resolves it like any other. Printed: the
time of each phase (from the run's phase rows), the total, the peak RSS of this process and of its
waited-for children (the git commands), then the same for a cached re-run, and the time to
``git init`` + ``git add`` + ``git commit`` the same files directly and to ``shutil.copytree`` them.
Usage, from the repo root::

    .venv/bin/python -m bench.big_project
"""

from __future__ import annotations

import hashlib
import os
import random
import resource
import shutil
import subprocess
import time
from pathlib import Path
from typing import ClassVar

from bench._common import cleanup, isolate, machine, pombolt_run

FILES = 1000
TOTAL_BYTES = 20 * 1024 * 1024
BINARY_SHARE = 0.15  # of the files; the rest is text
LINKED = 40  # files index.html links to

ROOT = isolate(
    "big",
    {
        "POMBOLT_LIMIT_MAX_FILES": str(2 * FILES),
        "POMBOLT_LIMIT_MAX_TOTAL_BYTES": str(4 * TOTAL_BYTES),
        "POMBOLT_LIMIT_MAX_FILE_BYTES": str(TOTAL_BYTES),
    },
)

from pydantic import Field  # noqa: E402 - the limits and Prefect's home must be set before these imports

from blocks.generators.base import GenerationRequest, GenerationResult, Generator  # noqa: E402
from core.files import GeneratedFile  # noqa: E402

_WORDS = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et "
    "dolore magna aliqua pomodoro timer task list focus break session streak"
).split()


class BigProjectGenerator(Generator):
    """Test-only generator: ``file_count`` deterministic files totalling exactly ``total_bytes``."""

    _block_type_name = "Pom-Bolt Bench Big Project Generator"
    _block_type_slug = "pombolt-bench-big-project-generator"
    _description: ClassVar[str] = "Benchmark only: a large deterministic project, no LLM."

    file_count: int = Field(FILES, description="How many files to generate (index.html included).")
    total_bytes: int = Field(TOTAL_BYTES, description="Exact total size of the files.")
    binary_share: float = Field(BINARY_SHARE, description="Share of the files that are binary.")

    def generate(self, request: GenerationRequest) -> GenerationResult:
        """Files seeded by the requirements, so the same requirements give the same bytes."""
        return GenerationResult(files=make_files(request.requirements, self), label="bench big project")


def _text(rng: random.Random, size: int) -> bytes:
    words: list[str] = []
    length = 0
    while length < size:
        line = " ".join(rng.choices(_WORDS, k=12)) + f" {rng.getrandbits(64):016x}\n"
        words.append(line)
        length += len(line)
    return "".join(words).encode("ascii")[:size]


def make_files(seed: str, spec: BigProjectGenerator) -> list[GeneratedFile]:
    """The project: sizes drawn at random and scaled to ``total_bytes``, index.html first."""
    rng = random.Random(hashlib.sha256(seed.encode()).digest())
    n = spec.file_count - 1
    paths = [
        f"assets/{i % 20:02d}/img{i:04d}.bin"
        if rng.random() < spec.binary_share
        else f"docs/{i % 20:02d}/page{i:04d}.txt"
        for i in range(n)
    ]
    links = "\n".join(f'<li><a href="{p}">{p}</a></li>' for p in paths[:LINKED])
    index = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Big bench project</title></head>\n'
        f"<body><h1>Big bench project</h1><ul>\n{links}\n</ul></body></html>\n"
    ).encode()
    weights = [rng.lognormvariate(0, 1) for _ in range(n)]
    budget = spec.total_bytes - len(index)
    sizes = [max(1, int(budget * w / sum(weights))) for w in weights]
    sizes[-1] += budget - sum(sizes)
    files = [GeneratedFile(path="index.html", content=index)]
    for path, size in zip(paths, sizes, strict=True):
        content = rng.randbytes(size) if path.endswith(".bin") else _text(rng, size)
        files.append(GeneratedFile(path=path, content=content))
    return files


def rss_mb() -> tuple[float, float]:
    """Peak RSS in MB of this process and of its largest waited-for child (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return own, kids


def live_children() -> list[tuple[int, str, float]]:
    """This process's live children: pid, what runs, and their peak RSS (``VmHWM``) in MB."""
    found: list[tuple[int, str, float]] = []
    for proc in Path("/proc").iterdir():
        try:
            status = dict(line.split(":", 1) for line in (proc / "status").read_text().splitlines() if ":" in line)
            if not proc.name.isdigit() or int(status["PPid"]) != os.getpid():
                continue
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, KeyError, ValueError):
            continue  # gone meanwhile, or not a process
        what = " ".join(a.decode(errors="replace") for a in argv[1:4])[:60]
        what = "Prefect's temporary server" if "uvicorn" in what else "static server" if "static" in what else what
        found.append((int(proc.name), what, int(status.get("VmHWM", "0 kB").split()[0]) / 1024))
    return found


def current_rss_mb() -> float:
    """This process's resident set now, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def direct_baseline(files: list[GeneratedFile], where: Path) -> tuple[float, float, float]:
    """Seconds to write the files, to git init + add + commit them, and to copytree them."""
    src = where / "src"
    started = time.perf_counter()
    for f in files:
        target = src / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.content)
    wrote = time.perf_counter() - started
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    started = time.perf_counter()
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "bench"]):
        subprocess.run(["git", "-C", str(src), *args], check=True, env=env, capture_output=True)
    committed = time.perf_counter() - started
    shutil.rmtree(src / ".git")
    started = time.perf_counter()
    shutil.copytree(src, where / "copy")
    copied = time.perf_counter() - started
    return wrote, committed, copied


def show_run(label: str, report: dict[str, object], seconds: float) -> None:
    """Print one run's phases and total."""
    phases = report["phases"]
    assert isinstance(phases, list)
    print(f"\n{label}: {seconds:.2f}s wall in total (the CLI's own clock: {report['seconds']}s)")
    for p in phases:
        note = " (cached)" if p["cached"] else ""
        print(f"  {p['name']:<10}{p['seconds'] or 0:>7.2f}s  {p['status']}{note}")


def main() -> None:
    """Warm up, run the big project twice (cold, then cached), then the direct baselines."""
    try:
        from blocks.catalog import save_block
        from core.runtime import get_store
        from core.settings import get_settings

        print(machine())
        started = time.perf_counter()
        pombolt_run("a warm-up counter", "--name", "warm-up")
        print(f"warm-up run (Prefect server start, static server): {time.perf_counter() - started:.2f}s (not counted)")
        settings = get_settings()
        store = get_store(settings)
        save_block(store, settings.default_tenant, "bench-big", BigProjectGenerator())
        own0, _ = rss_mb()
        print(f"before the big run: peak RSS {own0:.0f} MB (this process), {current_rss_mb():.0f} MB now")

        requirements = "a big project for the benchmark"
        for label in ("big project, cold", "big project, cached re-run"):
            started = time.perf_counter()
            report = pombolt_run(requirements, "--name", "big", "--generator", "bench-big")
            show_run(label, report, time.perf_counter() - started)
            own, kids = rss_mb()
            print(
                f"  peak RSS so far: {own:.0f} MB this process (the worker; {current_rss_mb():.0f} MB now), "
                f"{kids:.0f} MB largest exited child (git; counts the pages it shared with us at fork)"
            )
            for pid, what, peak in live_children():
                print(f"  live child {pid} ({what}): peak RSS {peak:.0f} MB")

        files = make_files(requirements, BigProjectGenerator())  # after the runs: not in their peak RSS
        total = sum(f.size for f in files)
        binary = sum(1 for f in files if f.path.endswith(".bin"))
        print(f"\nproject: {len(files)} files ({binary} binary), {total:,} bytes ({total / 2**20:.1f} MiB)")
        wrote, committed, copied = direct_baseline(files, ROOT / "direct")
        print(
            f"direct, same files: write {wrote:.2f}s, git init+add+commit {committed:.2f}s, "
            f"shutil.copytree {copied:.2f}s"
        )
        print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        cleanup(ROOT)


if __name__ == "__main__":
    main()
