"""Watching and killing a running build sandbox: its processes' memory, its work dir's disk use (DESIGN §6)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["Watchdog", "disk_usage", "kill_tree", "tree_rss"]


class Watchdog:
    """Polls a running sandbox: the summed RSS of its processes and the size of its work dir.

    Passing either limit kills the sandbox (``kill`` is called once) and sets :attr:`reason` to
    ``"memory"`` or ``"disk"``, with :attr:`seen` the measured bytes.
    """

    def __init__(
        self,
        pid: int,
        work: Path,
        *,
        memory_bytes: int,
        disk_bytes: int,
        kill: Callable[[], None],
        interval: float = 0.2,
        disk_every: float = 1.0,
    ) -> None:
        self.pid, self.work = pid, work
        self.memory_bytes, self.disk_bytes = memory_bytes, disk_bytes
        self._kill = kill
        self.interval, self.disk_every = interval, disk_every
        self.reason: str | None = None
        self.seen = 0
        self.peak_memory = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pombolt-build-watchdog", daemon=True)

    def __enter__(self) -> Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        next_disk = 0.0
        while not self._stop.is_set():
            memory = tree_rss(self.pid)
            self.peak_memory = max(self.peak_memory, memory)
            if memory > self.memory_bytes:
                self._trip("memory", memory)
                return
            if time.monotonic() >= next_disk:
                disk = disk_usage(self.work)
                if disk > self.disk_bytes:
                    self._trip("disk", disk)
                    return
                next_disk = time.monotonic() + self.disk_every
            self._stop.wait(self.interval)

    def _trip(self, reason: str, seen: int) -> None:
        self.reason, self.seen = reason, seen
        self._kill()


_PAGE = os.sysconf("SC_PAGE_SIZE")


def _children() -> dict[int, list[int]]:
    """Every process's children, from ``/proc/<pid>/stat``."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def tree_rss(root: int) -> int:
    """Bytes resident of ``root`` and every process below it (a sandbox's whole pid namespace: orphans in it
    are adopted by its init, bwrap's child, so nothing of it leaves this tree)."""
    children = _children()
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, ()))
        try:
            with open(f"/proc/{pid}/statm", "rb") as fh:
                total += int(fh.read().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            continue
    return total


def disk_usage(root: Path) -> int:
    """Bytes of disk used below ``root`` (allocated blocks; symlinks not followed; unreadable parts skipped)."""
    total, todo = 0, [str(root)]
    while todo:
        folder = todo.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += info.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        todo.append(entry.path)
        except OSError:
            continue
    return total


def kill_tree(pid: int) -> None:
    """SIGKILL a running sandbox: bwrap's child is the init of its pid namespace, and when it dies the kernel
    kills everything in the namespace; bwrap then exits by itself, reaping it (no zombie is left to the
    machine's init). Before bwrap has a child, its process group is killed instead."""
    kids = _children().get(pid, [])
    for kid in kids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(kid, signal.SIGKILL)
    if not kids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
