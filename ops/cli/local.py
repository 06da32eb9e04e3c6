"""``pombolt init``, ``serve`` and ``stop``: set up Prefect, run the local services, stop the static server."""

from __future__ import annotations

from typing import Annotated

import typer

from core.errors import PomBoltError
from core.settings import get_settings
from ops.cli._common import bad_input, boot, out


def init() -> None:
    """Register Pom-Bolt's Block types, the work pool and the global concurrency limits."""
    boot()
    from usecases.setup import bootstrap

    try:
        for line in bootstrap():
            out.print(line, highlight=False)
    except PomBoltError as exc:
        bad_input(exc)


def serve(
    port: Annotated[int, typer.Option(help="API port (0 picks a free one).")] = 8000,
    host: Annotated[str, typer.Option(help="API address.")] = "127.0.0.1",
) -> None:
    """Run the API and status page, the dispatcher, the flow runner, the static server and (unless
    PREFECT_API_URL is set) a local Prefect server with its UI, until Ctrl-C."""
    boot()
    from ops.serve import serve as run_serve

    raise typer.Exit(run_serve(host=host, port=port, say=lambda line: out.print(line, highlight=False)))


def stop() -> None:
    """Stop the local static server."""
    from blocks.targets.static_host import stop as stop_server

    stopped = stop_server(get_settings())
    out.print("static server stopped" if stopped else "static server was not running")
