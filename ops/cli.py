"""The ``pombolt`` command line (typer + rich).

Prefect is imported only after :func:`core.runtime.configure_prefect_env` has pointed it into the data
dir, so ``POMBOLT_DATA_DIR`` isolates everything. Bad input exits 2 with one line; a failed run exits 1.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from core.errors import PomBoltError
from core.settings import get_settings

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="Pom-Bolt: requirements in, a live web app out.",
)
keys_app = typer.Typer(no_args_is_help=True, help="Tenant API keys.")
app.add_typer(keys_app, name="keys")
out = Console()
err = Console(stderr=True)


def _bad_input(exc: PomBoltError | str) -> NoReturn:
    message = exc.message if isinstance(exc, PomBoltError) else exc
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _boot() -> Any:
    """Validate the data dir, configure Prefect, return the state store."""
    from core.runtime import configure_prefect_env, get_store

    settings = get_settings()
    try:
        settings.ensure_data_dir()
    except PomBoltError as exc:
        _bad_input(exc)
    configure_prefect_env(settings, quiet_console=True)
    from core.http import install_redaction

    install_redaction()
    return get_store(settings)


class _PhaseWatcher(threading.Thread):
    """Prints each phase as it starts and ends, by watching the state store."""

    def __init__(self, store: Any, run_id: str, quiet: bool) -> None:
        super().__init__(daemon=True)
        self.store, self.run_id, self.quiet = store, run_id, quiet
        self.stopped = threading.Event()
        self.seen: dict[str, str] = {}

    def poll(self) -> None:
        for row in self.store.phases(self.run_id):
            key = f"{row.status}{'/cached' if row.cached else ''}"
            if self.seen.get(row.phase) == key:
                continue
            self.seen[row.phase] = key
            if self.quiet:
                continue
            if row.status == "running":
                err.print(f"  [cyan]…[/] {row.phase:<9} started", highlight=False)
            else:
                secs = (row.ended_at - row.started_at).total_seconds() if row.ended_at else 0.0
                mark = {"completed": "[green]✓[/]", "failed": "[red]✗[/]", "skipped": "[dim]-[/]"}.get(row.status, "?")
                note = " (cached)" if row.cached else ""
                err.print(f"  {mark} {row.phase:<9} {row.status}{note} {secs:.2f}s", highlight=False)

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            try:
                self.poll()
            except Exception:  # noqa: S112 - a transient read error must not kill the watcher
                continue

    def finish(self) -> None:
        self.stopped.set()
        self.join(timeout=2)
        self.poll()


@app.command()
def run(
    requirements: Annotated[str, typer.Argument(help="What the app should do, in plain words.")],
    name: Annotated[str | None, typer.Option(help="Project name; an existing name adds a run to that project.")] = None,
    generator: Annotated[str | None, typer.Option(help="Generator Block: offline, openai, or a saved name.")] = None,
    repository: Annotated[str | None, typer.Option(help="Repository Block: local-git, none, or a saved name.")] = None,
    target: Annotated[str | None, typer.Option(help="Deployment Block: local-static or a saved name.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Generate, commit, build, deploy and verify an app, in this process."""
    store = _boot()  # first: the Blocks below import Prefect, which reads its settings (home, results) at import
    from blocks.catalog import Kind, resolve
    from usecases.submit import Submission, clean_requirements, refs_for

    settings = get_settings()
    sub = Submission(requirements=requirements, name=name, generator=generator, repository=repository, target=target)
    try:
        clean_requirements(requirements, settings)
        existing = store.find_project(settings.default_tenant, name) if name else None
        refs = refs_for(sub, settings)
        if existing is not None:
            refs.generator = generator or existing.generator_ref
            refs.repository = repository or existing.repository_ref
            refs.target = target or existing.target_ref
        store.ensure_tenant(settings.default_tenant)
        kinds: dict[Kind, str] = {"generator": refs.generator, "repository": refs.repository, "target": refs.target}
        for kind, ref in kinds.items():
            resolve(kind, ref, tenant_id=settings.default_tenant, store=store)
        if refs.target == "local-static":
            from blocks.targets.static_host import ensure_running

            ensure_running(settings)
        from usecases.submit import submit

        project, run_row, _ = submit(store, settings.default_tenant, sub, settings)
    except PomBoltError as exc:
        _bad_input(exc)
    _execute(store, project.id, run_row.id, as_json)


def _execute(store: Any, project_id: str, run_id: str, as_json: bool) -> None:
    from flows.pipeline import requirements_to_deployment

    if not as_json:
        err.print(f"[bold]Pom-Bolt[/] run {run_id[:12]} of project {project_id[:12]}", highlight=False)
    watcher = _PhaseWatcher(store, run_id, quiet=as_json)
    watcher.start()
    started = time.monotonic()
    failure: BaseException | None = None
    try:
        requirements_to_deployment(run_id)
    except BaseException as exc:  # the run row holds the error; we report it below
        failure = exc
    finally:
        watcher.finish()
    report = run_report(store, run_id, time.monotonic() - started)
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        _print_report(report)
    if report["status"] != "verified":
        if failure is not None and not isinstance(failure, Exception):  # Ctrl-C and friends
            raise failure
        raise typer.Exit(1)


def run_report(store: Any, run_id: str, seconds: float | None = None) -> dict[str, Any]:
    """The JSON-ready report of a run (what ``--json`` prints)."""
    r = store.get_run(run_id)
    phases = [
        {
            "name": p.phase.value,
            "status": p.status.value,
            "cached": p.cached,
            "seconds": round((p.ended_at - p.started_at).total_seconds(), 3) if p.ended_at else None,
        }
        for p in store.phases(run_id)
    ]
    error = (
        {"phase": r.error_phase, "code": r.error_code, "message": r.error_message, "retryable": r.error_retryable}
        if r.error_code
        else None
    )
    return {
        "project_id": r.project_id,
        "run_id": r.id,
        "kind": r.kind.value,
        "status": r.status.value,
        "repository_url": r.repository_url,
        "commit_sha": r.commit_sha,
        "live_url": r.live_url,
        "phases": phases,
        "spend": {"llm_calls": r.llm_calls, "prompt_tokens": r.prompt_tokens, "completion_tokens": r.completion_tokens},
        "error": error,
        "seconds": round(seconds, 3) if seconds is not None else None,
    }


def _print_report(report: dict[str, Any]) -> None:
    ok = report["status"] == "verified"
    colour = "green" if ok else "red"
    out.print(f"[bold {colour}]{report['status']}[/]", highlight=False)
    out.print(f"project:    {report['project_id']}", highlight=False)
    out.print(f"run:        {report['run_id']}", highlight=False)
    out.print(f"repository: {report['repository_url'] or '-'}", highlight=False, soft_wrap=True)
    out.print(f"commit:     {report['commit_sha'] or '-'}", highlight=False)
    spend = report["spend"]
    out.print(
        f"spend:      {spend['llm_calls']} LLM calls, {spend['prompt_tokens'] + spend['completion_tokens']} tokens",
        highlight=False,
    )
    if report["error"]:
        e = report["error"]
        out.print(f"[red]failed in {e['phase']} ({e['code']}):[/] {e['message']}", highlight=False, soft_wrap=True)
    out.print(f"live URL:   {report['live_url'] or '-'}", highlight=False, soft_wrap=True)


@app.command()
def status(
    ident: Annotated[str, typer.Argument(help="Project id, project name or run id.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show a project's latest run: phases, spend, links and error."""
    store = _boot()
    settings = get_settings()
    run_row = _find_run(store, settings.default_tenant, ident)
    report = run_report(store, run_row.id)
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        return
    _print_report(report)
    for p in report["phases"]:
        out.print(f"  {p['name']:<9} {p['status']}{' (cached)' if p['cached'] else ''}", highlight=False)


def _find_run(store: Any, tenant_id: str, ident: str) -> Any:
    from core.errors import NotFound

    try:
        return store.get_run(ident, tenant_id)
    except NotFound:
        pass
    project = store.find_project(tenant_id, ident)
    if project is None:
        try:
            project = store.get_project(ident, tenant_id)
        except NotFound as exc:
            _bad_input(f"no project or run {ident!r}; use the id or name 'pombolt run' printed")
            raise AssertionError from exc
    latest = store.latest_run(project.id)
    if latest is None:
        _bad_input(f"project {ident!r} has no runs yet")
    return latest


@app.command()
def versions(ident: Annotated[str, typer.Argument(help="Project id or name.")]) -> None:
    """List a project's versions (what each verified run put live)."""
    store = _boot()
    project = _find_project(store, get_settings().default_tenant, ident)
    for v in store.versions(project.id):
        out.print(
            f"{v.number:>3}  {v.created_at:%Y-%m-%d %H:%M:%S}  commit {(v.commit_sha or '-')[:12]}  "
            f"snapshot {v.snapshot_id[:12]}  {v.live_url}",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def change(
    ident: Annotated[str, typer.Argument(help="Project id or name.")],
    request: Annotated[str, typer.Argument(help="What to change, in plain words.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Change a live app: one new commit in the same repository, an incremental deploy to the same site."""
    from usecases.iterate import create_change_run

    store = _boot()
    settings = get_settings()
    project = _find_project(store, settings.default_tenant, ident)
    try:
        run_row = create_change_run(store, project, request, settings)
        _prepare_target(project.target_ref)
    except PomBoltError as exc:
        _bad_input(exc)
    _execute(store, project.id, run_row.id, as_json)


@app.command()
def rollback(
    ident: Annotated[str, typer.Argument(help="Project id or name.")],
    version: Annotated[int, typer.Argument(help="Version number to put live again (see 'pombolt versions').")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
) -> None:
    """Put an earlier version live again: no generation, only differing files uploaded, a restoring commit."""
    from usecases.iterate import create_rollback_run

    store = _boot()
    project = _find_project(store, get_settings().default_tenant, ident)
    try:
        run_row = create_rollback_run(store, project, version)
        _prepare_target(project.target_ref)
    except PomBoltError as exc:
        _bad_input(exc)
    _execute(store, project.id, run_row.id, as_json)


def _prepare_target(target_ref: str) -> None:
    if target_ref == "local-static":
        from blocks.targets.static_host import ensure_running

        ensure_running(get_settings())


def _find_project(store: Any, tenant_id: str, ident: str) -> Any:
    from core.errors import NotFound

    project = store.find_project(tenant_id, ident)
    if project is not None:
        return project
    try:
        return store.get_project(ident, tenant_id)
    except NotFound:
        _bad_input(f"no project {ident!r}; use the name or id 'pombolt run' printed")


@app.command("open")
def open_(ident: Annotated[str, typer.Argument(help="Project id, name or run id.")]) -> None:
    """Make sure the local static server runs and print the project's live URL."""
    store = _boot()
    settings = get_settings()
    run_row = _find_run(store, settings.default_tenant, ident)
    project = store.get_project(run_row.project_id)
    versions = store.versions(project.id)
    if not versions:
        _bad_input(f"project {project.name!r} has no live version yet; run it first")
    if project.target_ref == "local-static":
        from blocks.targets.static_host import ensure_running

        try:
            ensure_running(settings)
        except PomBoltError as exc:
            _bad_input(exc)
    out.print(versions[-1].live_url, highlight=False)


@app.command()
def stop() -> None:
    """Stop the local static server."""
    from blocks.targets.static_host import stop as stop_server

    settings = get_settings()
    stopped = stop_server(settings)
    out.print("static server stopped" if stopped else "static server was not running")


@app.command()
def init() -> None:
    """Register Pom-Bolt's Block types, the work pool and the global concurrency limits."""
    _boot()
    from usecases.setup import bootstrap

    try:
        for line in bootstrap():
            out.print(line, highlight=False)
    except PomBoltError as exc:
        _bad_input(exc)


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="API port (0 picks a free one).")] = 8000,
    host: Annotated[str, typer.Option(help="API address.")] = "127.0.0.1",
) -> None:
    """Run the API and status page, the dispatcher, the flow runner, the static server and (unless
    PREFECT_API_URL is set) a local Prefect server with its UI, until Ctrl-C."""
    _boot()
    from ops.serve import serve as run_serve

    raise typer.Exit(run_serve(host=host, port=port, say=lambda line: out.print(line, highlight=False)))


@keys_app.command("create")
def keys_create(tenant: Annotated[str, typer.Option(help="Tenant id (created when new).")]) -> None:
    """Create an API key for a tenant and print it once (only its hash is stored)."""
    store = _boot()
    row, plain = store.create_api_key(tenant)
    out.print(plain, highlight=False)
    err.print(f"key {row.prefix}… created for tenant {tenant}; it is shown only now", highlight=False)


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="Key id or the prefix printed at creation.")]) -> None:
    """Revoke an API key."""
    store = _boot()
    try:
        row = store.revoke_api_key(key)
    except PomBoltError as exc:
        _bad_input(exc)
    out.print(f"key {row.prefix}… revoked")


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


if __name__ == "__main__":
    main()
