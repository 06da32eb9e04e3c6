"""The ``pombolt`` command line (typer + rich): the commands, one module per group, registered here in the
order ``pombolt --help`` lists them.

- :mod:`ops.cli.runs`: ``run``, ``change``, ``rollback`` — queue a run and carry it out in this process.
- :mod:`ops.cli.show`: ``status``, ``versions``, ``open`` — what a project has done and where it is live.
- :mod:`ops.cli.local`: ``init``, ``serve``, ``stop`` — set up and run the local services.
- :mod:`ops.cli.keys`: ``keys create``, ``keys revoke`` — tenant API keys.

Prefect is imported only after :func:`core.runtime.configure_prefect_env` has pointed it into the data
dir, so ``POMBOLT_DATA_DIR`` isolates everything. Bad input exits 2 with one line; a failed run exits 1.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import typer
from sqlalchemy.exc import SQLAlchemyError

from core.errors import PomBoltError
from ops.cli import keys, local, runs, show
from ops.cli._common import err

__all__ = ["app", "main"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="Pom-Bolt: requirements in, a live web app out.",
)
_COMMANDS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("run", runs.run),
    ("status", show.status),
    ("versions", show.versions),
    ("change", runs.change),
    ("rollback", runs.rollback),
    ("open", show.open_),
    ("stop", local.stop),
    ("init", local.init),
    ("serve", local.serve),
)
for name, command in _COMMANDS:
    app.command(name)(command)

keys_app = typer.Typer(no_args_is_help=True, help="Tenant API keys.")
keys_app.command("create")(keys.create)
keys_app.command("revoke")(keys.revoke)
app.add_typer(keys_app, name="keys")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except PomBoltError as exc:  # anything not handled above is still one line, never a traceback
        err.print(f"[bold red]error:[/] {exc.message}", highlight=False)
        sys.exit(2 if exc.code.startswith(("config.", "input.")) else 1)
    except SQLAlchemyError as exc:
        err.print(
            f"[bold red]error:[/] the state store failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
            "check POMBOLT_DATABASE_URL and that the database is reachable",
            highlight=False,
        )
        sys.exit(1)
