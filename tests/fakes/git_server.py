"""A local ``git daemon`` serving bare repositories over git:// with pushes enabled (for GitRemoteTarget).

Bound to 127.0.0.1 on a free port, waited for with a bounded loop, stopped by its PID.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Self

__all__ = ["GitDaemon"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GitDaemon:
    """``git daemon --export-all --enable=receive-pack`` over a folder of bare repositories."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def create(self, name: str) -> str:
        """Create an empty bare repository ``name`` (HEAD on main) and return its git:// URL."""
        subprocess.run(["git", "init", "--quiet", "--bare", "-b", "main", str(self.base / f"{name}.git")], check=True)
        return self.url(name)

    def url(self, name: str) -> str:
        """The git:// URL of a repository."""
        return f"git://127.0.0.1:{self.port}/{name}.git"

    def start(self) -> Self:
        """Start the daemon and wait (bounded, 10 s) for its port."""
        self.base.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        env = {"PATH": os.environ.get("PATH", ""), "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(self.base)}
        self._proc = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                f"--base-path={self.base}",
                "--export-all",
                "--enable=receive-pack",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                str(self.base),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("git daemon did not listen within 10 s")

    def stop(self) -> None:
        """Stop the daemon by PID."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
