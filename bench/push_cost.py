"""Requests and writes of a GitHub publish for N = 10, 100, 1000 text files, and for an unchanged snapshot.

Runs GitHubRepositoryTarget against the fake GitHub (tests/fakes/github.py, real git objects) on 127.0.0.1.
Target: at most 5 requests plus one per tree chunk for an update (100 files in <= 6), 0 writes unchanged.

    .venv/bin/python -m bench.push_cost
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from prefect.filesystems import LocalFileSystem
from prefect_github import GitHubCredentials
from pydantic import SecretStr

from blocks.repositories.github import GitHubRepositoryTarget
from core.files import GeneratedFile
from core.snapshots import SnapshotStore
from tests.contracts.repository_suite import Publisher
from tests.fakes.github import FakeGitHub

TOKEN = "ghp_" + "b3nch" * 8


def files(n: int, version: int) -> list[GeneratedFile]:
    """``n`` small text files; ``version`` changes one of them."""
    out = [GeneratedFile.text(f"src/f{i:04d}.txt", f"file {i}\n") for i in range(1, n)]
    return [*out, GeneratedFile.text("index.html", f"<p>version {version}</p>\n")]


def main() -> None:
    """Print one line per case."""
    with tempfile.TemporaryDirectory() as tmp, FakeGitHub(users={TOKEN: "bench"}) as fake:
        snapshots = SnapshotStore(LocalFileSystem(basepath=str(Path(tmp) / "s")), "bench")
        target = GitHubRepositoryTarget(credentials=GitHubCredentials(token=SecretStr(TOKEN)), api_url=fake.url)
        print(f"{'case':<28}{'requests':>9}{'writes':>8}{'seconds':>9}")
        for n in (10, 100, 1000):
            publisher = Publisher(target, snapshots, f"bench {n}")
            for label, version in (("first (creates repo)", 1), ("update", 2), ("unchanged", 2)):
                started = time.perf_counter()
                result = publisher.publish(files(n, version))
                took = time.perf_counter() - started
                print(f"{f'N={n} {label}':<28}{result.requests:>9}{result.writes:>8}{took:>9.2f}")


if __name__ == "__main__":
    main()
