"""Helpers shared by ``bench/pipeline.py`` and ``bench/big_project.py``.

Importing this module imports nothing from Prefect or Pom-Bolt: :func:`isolate` must run first, because
Prefect and our settings read the environment once, at import.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Variables that would point a bench at someone's real Prefect server, storage or LLM.
_FOREIGN = (
    "PREFECT_API_URL",
    "PREFECT_API_KEY",
    "POMBOLT_STORAGE_BLOCK",
    "POMBOLT_DATABASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
)


def isolate(prefix: str, extra: dict[str, str] | None = None) -> Path:
    """Point Pom-Bolt and Prefect at a throwaway folder (call before importing either).

    Prefect runs on its temporary local server (no ``PREFECT_API_URL``), with its home, database and
    results in the folder; ``extra`` adds or overrides variables (e.g. raised limits).

    Returns:
        The throwaway folder; remove it with :func:`cleanup` at the end.
    """
    root = Path(tempfile.mkdtemp(prefix=f"pombolt-bench-{prefix}-"))
    for name in _FOREIGN:
        os.environ.pop(name, None)
    os.environ.update(
        {
            "POMBOLT_DATA_DIR": str(root / "data"),
            "PREFECT_HOME": str(root / "prefect"),
            "PREFECT_LOCAL_STORAGE_PATH": str(root / "prefect-results"),
            "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
            "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "WARNING",
            # the temporary server's first start (database migrations) exceeds the 20 s default on a busy box
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
            **(extra or {}),
        }
    )
    return root


def cleanup(root: Path) -> None:
    """Stop the data dir's static server and remove the throwaway folder."""
    from blocks.targets.static_host import stop
    from core.settings import get_settings

    stop(get_settings())
    shutil.rmtree(root, ignore_errors=True)


def machine() -> str:
    """One line naming the machine: cores, load at the time, Python and Prefect versions."""
    import prefect

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} cores, load average {load} (1/5/15 min), "
        f"Python {platform.python_version()}, Prefect {prefect.__version__}"
    )


def median(values: Sequence[float]) -> float:
    """The median of some timings."""
    return statistics.median(values)


def p95(values: Sequence[float]) -> float:
    """The 95th percentile by nearest rank (for 5 samples, the largest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def pombolt_run(*args: str) -> dict[str, Any]:
    """Run ``pombolt run ARGS --json`` in this process (typer's CliRunner) and return its report.

    Raises:
        RuntimeError: When the run does not end ``verified`` (its error and stderr are included).
    """
    from typer.testing import CliRunner

    from ops.cli import app

    result = CliRunner().invoke(app, ["run", *args, "--json"])
    lines = result.stdout.strip().splitlines()
    report: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    if result.exit_code != 0 or report.get("status") != "verified":
        raise RuntimeError(
            f"pombolt run {' '.join(args)[:80]!r} exited {result.exit_code}: "
            f"error={report.get('error')} stderr={result.stderr[-2000:]!r}"
        ) from result.exception
    return report
