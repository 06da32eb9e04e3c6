"""Run Stoplight Prism in proxy mode in front of a fake, so every exchange is checked against a contract.

Prism with `--errors` answers 422 (and does not forward) when a request breaks the contract, and 500
when the fake's response breaks it; both carry an `sl-violations` header. A status code the contract
does not declare passes through with only a warning in `sl-violations`, so tests should fail on any
`sl-violations` header: use `assert_no_violations`.

Example:
    with FakeGitHub() as fake, PrismProxy(contracts_dir() / "github.prism.openapi.json", fake.url) as p:
        r = httpx.get(f"{p.url}/user")
        assert_no_violations(r.headers)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Self

__all__ = [
    "PRISM_VERSION",
    "PrismLog",
    "PrismProxy",
    "assert_no_violations",
    "contracts_dir",
    "ensure_prism",
    "find_prism",
    "repo_root",
]

PRISM_VERSION = "5.14.2"  # 5.16 needs Node >= 24.18; 5.14.2 runs on Node 20


def repo_root() -> Path:
    """The repository root (tests/fakes/prism.py -> parents[2])."""
    return Path(__file__).resolve().parents[2]


def contracts_dir() -> Path:
    """Folder of the provider contracts: env POMBOLT_CONTRACTS_DIR, else `<repo>/../shared/contracts`."""
    override = os.environ.get("POMBOLT_CONTRACTS_DIR")
    return Path(override) if override else (repo_root().parent / "shared" / "contracts").resolve()


def _prism_prefix() -> Path:
    return repo_root() / ".cache" / "prism"


def find_prism() -> str | None:
    """Locate the prism binary: env PRISM_BIN, else `<repo>/.cache/prism/node_modules/.bin/prism`.

    Returns:
        The path of an existing file, or None.
    """
    candidates = [os.environ.get("PRISM_BIN"), str(_prism_prefix() / "node_modules" / ".bin" / "prism")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def ensure_prism(timeout: float = 180.0) -> str | None:
    """Return the prism binary, installing it with npm into `<repo>/.cache/prism` when missing.

    Concurrent callers (e.g. pytest-xdist workers) are serialised with a file lock. Failures are
    reported on stderr.

    Args:
        timeout: Seconds allowed for `npm install`.

    Returns:
        The prism path, or None when it is missing and cannot be installed (no npm, install failed).
    """
    found = find_prism()
    npm = shutil.which("npm")
    if found or npm is None:
        return found
    prefix = _prism_prefix()
    prefix.mkdir(parents=True, exist_ok=True)
    with open(prefix.parent / "prism.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the holder's install is bounded by `timeout`
        found = find_prism()
        if found:
            return found
        command = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(prefix)]
        try:
            done = subprocess.run(
                [*command, f"@stoplight/prism-cli@{PRISM_VERSION}"],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            sys.stderr.write(f"ensure_prism: npm install timed out after {timeout:.0f} s\n")
            return None
        if done.returncode != 0:
            sys.stderr.write(
                f"ensure_prism: npm install failed ({done.returncode}):\n{done.stderr[-2000:]}\n"
            )
    return find_prism()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _headers_get(headers: Mapping[str, str] | Iterable[tuple[str, str]], name: str) -> list[str]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [value for key, value in items if key.lower() == name.lower()]


def assert_no_violations(response_headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
    """Fail when Prism reported a contract violation (any `sl-violations` header, warnings included).

    Args:
        response_headers: Headers of a response that went through Prism (httpx.Headers, a dict, or
            (name, value) pairs).

    Raises:
        AssertionError: With the content of `sl-violations`.
    """
    found = _headers_get(response_headers, "sl-violations")
    if found:
        raise AssertionError(f"Prism reported contract violations: {'; '.join(found)}")


class PrismProxy:
    """`prism proxy <contract> <upstream> --errors` on a free 127.0.0.1 port, in its own process group.

    Attributes:
        contract_path: The OpenAPI file.
        upstream_url: Where Prism forwards valid requests (the fake's URL, plus any base path).
        log_path: Prism's stdout and stderr (set by `start`; kept after `stop` for diagnosis).
    """

    def __init__(
        self,
        contract_path: str | os.PathLike[str],
        upstream_url: str,
        prism_bin: str | None = None,
        *,
        startup_timeout: float = 20.0,
        log_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        """Describe the proxy (not started).

        Args:
            contract_path: OpenAPI file to validate against (use the `*.prism.openapi.json` variants).
            upstream_url: URL of the fake that Prism forwards to.
            prism_bin: Prism binary; default `find_prism()`.
            startup_timeout: Seconds to wait for the port (bounded; at most 20 s is plenty).
            log_dir: Folder for the log; default a new temporary folder.
        """
        self.contract_path = Path(contract_path)
        self.upstream_url = upstream_url
        self.prism_bin = prism_bin
        self.startup_timeout = startup_timeout
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.log_path: Path | None = None
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the proxy, e.g. "http://127.0.0.1:40321"."""
        if self._port is None:
            raise RuntimeError("PrismProxy is not running")
        return f"http://127.0.0.1:{self._port}"

    def log_text(self) -> str:
        """Prism's log so far ("" before start)."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def start(self) -> Self:
        """Start Prism and wait until its port accepts connections.

        Returns:
            The proxy itself.

        Raises:
            FileNotFoundError: No prism binary or no contract file.
            RuntimeError: Prism exited or did not listen within `startup_timeout`; the message ends with
                the log.
        """
        if self._proc is not None:
            raise RuntimeError("PrismProxy is already running")
        prism = self.prism_bin or find_prism()
        if prism is None:
            raise FileNotFoundError("prism not found: set PRISM_BIN or call ensure_prism()")
        if not self.contract_path.is_file():
            raise FileNotFoundError(f"contract not found: {self.contract_path}")
        log_dir = self.log_dir or Path(tempfile.mkdtemp(prefix="prism-"))
        log_dir.mkdir(parents=True, exist_ok=True)
        self._port = _free_port()
        self.log_path = log_dir / f"prism-{self.contract_path.stem}-{self._port}.log"
        self._log = open(self.log_path, "wb")
        command = [prism, "proxy", str(self.contract_path), self.upstream_url, "--errors"]
        self._proc = subprocess.Popen(
            [*command, "-h", "127.0.0.1", "-p", str(self._port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            self._wait_for_port()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_port(self) -> None:
        assert self._proc is not None and self._port is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"prism exited with {self._proc.returncode}:\n{self.log_text()[-3000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self._port), 0.5):
                return
            time.sleep(0.1)
        raise RuntimeError(
            f"prism did not listen within {self.startup_timeout} s:\n{self.log_text()[-3000:]}"
        )

    def stop(self) -> None:
        """Kill Prism's process group (SIGTERM, then SIGKILL after 5 s). Safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            with contextlib.suppress(ProcessLookupError):  # leftovers of the group, if any
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None
        self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PrismLog:
    """Reads a :class:`PrismProxy`'s log a piece at a time: the problem lines (contract errors, warnings,
    violations) written since the previous read."""

    MARKS = ("✖", "⚠", "violation")

    def __init__(self, prism: PrismProxy) -> None:
        self.prism = prism
        self.checked = 0

    def new_problems(self) -> list[str]:
        """Problem lines logged since the last call (the first call reads from the start)."""
        text = self.prism.log_text()
        new, self.checked = text[self.checked :], len(text)
        return [line for line in new.splitlines() if any(mark in line.lower() for mark in self.MARKS)]
