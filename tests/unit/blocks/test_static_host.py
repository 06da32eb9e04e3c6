"""The static server's lifecycle: status, stop and the pidfile (no process spawned)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from blocks.targets import static_host
from core.errors import ConfigError
from core.settings import Settings


def test_status_and_stop_without_a_pidfile(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert static_host.status(settings) is None
    assert static_host.stop(settings) is False


def test_a_pidfile_of_a_dead_process_is_not_running_and_stop_cleans_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    info = static_host.ServerInfo(
        pid=int(dead.stdout), host="127.0.0.1", port=1, url="http://127.0.0.1:1", root=str(tmp_path)
    )
    static_host.pidfile_path(settings).write_text(info.model_dump_json())
    assert static_host.status(settings) is None
    assert static_host.stop(settings) is False
    assert not static_host.pidfile_path(settings).exists()


def test_a_live_pid_that_is_not_our_server_is_never_signalled(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    info = static_host.ServerInfo(pid=os.getpid(), host="127.0.0.1", port=1, url="x", root=str(tmp_path))
    static_host.pidfile_path(settings).write_text(info.model_dump_json())
    assert static_host.status(settings) is None
    assert static_host.stop(settings) is False  # we are still alive to assert this


def test_a_corrupt_pidfile_reads_as_not_running(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    static_host.pidfile_path(settings).write_text("{not json")
    assert static_host.status(settings) is None


def test_each_site_has_its_own_origin() -> None:
    assert static_host.site_url(4321, "my-app-3f2a9c01") == "http://my-app-3f2a9c01.localhost:4321/"
    for bad in ("", "-x", "a.b", "A", "x" * 64, "../x"):
        with pytest.raises(ConfigError, match="host name label"):
            static_host.site_url(4321, bad)
