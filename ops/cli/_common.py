"""What every command shares: the consoles, booting the state store, finding projects, one-line refusals."""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from rich.console import Console

from core.errors import NotFound, PomBoltError
from core.settings import get_settings

out = Console()
err = Console(stderr=True)


def bad_input(exc: PomBoltError | str) -> NoReturn:
    """Print one line saying what was wrong, and exit 2."""
    message = exc.message if isinstance(exc, PomBoltError) else exc
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def boot() -> Any:
    """Validate the data dir, configure Prefect, return the state store."""
    from core.runtime import configure_prefect_env, get_store

    settings = get_settings()
    try:
        settings.ensure_data_dir()
    except PomBoltError as exc:
        bad_input(exc)
    configure_prefect_env(settings, quiet_console=True)
    from core.redaction import install_redaction

    install_redaction()
    return get_store(settings)


def find_run(store: Any, tenant_id: str, ident: str) -> Any:
    """The run ``ident`` names (a run id), or the latest run of the project it names (id or name)."""
    try:
        return store.get_run(ident, tenant_id)
    except NotFound:
        pass
    project = store.find_project(tenant_id, ident)
    if project is None:
        try:
            project = store.get_project(ident, tenant_id)
        except NotFound as exc:
            bad_input(f"no project or run {ident!r}; use the id or name 'pombolt run' printed")
            raise AssertionError from exc
    latest = store.latest_run(project.id)
    if latest is None:
        bad_input(f"project {ident!r} has no runs yet")
    return latest


def find_project(store: Any, tenant_id: str, ident: str) -> Any:
    """The project ``ident`` names (its name or id)."""
    project = store.find_project(tenant_id, ident)
    if project is not None:
        return project
    try:
        return store.get_project(ident, tenant_id)
    except NotFound:
        bad_input(f"no project {ident!r}; use the name or id 'pombolt run' printed")


def prepare_target(target_ref: str) -> None:
    """Make sure the local static server runs when the project deploys to it."""
    if target_ref == "local-static":
        from blocks.targets.static_host import ensure_running

        ensure_running(get_settings())
