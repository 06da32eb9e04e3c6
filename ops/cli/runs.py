"""``pombolt run``, ``change`` and ``rollback``: queue a run, then carry it out in this process, phase by phase."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from core.errors import PomBoltError
from core.redaction import safe_message
from core.settings import Settings, get_settings
from ops.cli._common import bad_input, boot, err, find_project, prepare_target
from ops.cli.show import print_report, run_report

if TYPE_CHECKING:
    from usecases.submit import Submission

AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def run(
    requirements: Annotated[str, typer.Argument(help="What the app should do, in plain words.")],
    name: Annotated[str | None, typer.Option(help="Project name; an existing name adds a run to that project.")] = None,
    generator: Annotated[str | None, typer.Option(help="Generator Block: offline, openai, or a saved name.")] = None,
    repository: Annotated[str | None, typer.Option(help="Repository Block: local-git, none, or a saved name.")] = None,
    target: Annotated[str | None, typer.Option(help="Deployment Block: local-static or a saved name.")] = None,
    as_json: AsJson = False,
) -> None:
    """Generate, commit, build, deploy and verify an app, in this process."""
    store = boot()  # first: the Blocks below import Prefect, which reads its settings (home, results) at import
    from blocks.catalog import Kind, resolve
    from usecases.submit import check_project_name, clean_requirements, refs_for, submit

    settings = get_settings()
    try:
        clean_requirements(requirements, settings)
        if name:
            check_project_name(name)
        sub = _submission(requirements, name, generator, repository, target)
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
        prepare_target(refs.target)
        project, run_row, _ = submit(store, settings.default_tenant, sub, settings)
    except PomBoltError as exc:
        bad_input(exc)
    execute(store, project.id, run_row.id, as_json)


def _submission(
    requirements: str, name: str | None, generator: str | None, repository: str | None, target: str | None
) -> Submission:
    """The submission the options make; a malformed Block reference is one line naming its option."""
    from usecases.submit import Submission

    try:
        return Submission(
            requirements=requirements, name=name, generator=generator, repository=repository, target=target
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        option = "--" + str(first["loc"][0]) if first["loc"] else "the input"
        bad_input(f"{option}: {first['msg']}")


def change(
    ident: Annotated[str, typer.Argument(help="Project id or name.")],
    request: Annotated[str, typer.Argument(help="What to change, in plain words.")],
    as_json: AsJson = False,
) -> None:
    """Change a live app: one new commit in the same repository, an incremental deploy to the same site."""
    from usecases.iterate import create_change_run

    store = boot()
    settings: Settings = get_settings()
    project = find_project(store, settings.default_tenant, ident)
    try:
        run_row = create_change_run(store, project, request, settings)
        prepare_target(project.target_ref)
    except PomBoltError as exc:
        bad_input(exc)
    execute(store, project.id, run_row.id, as_json)


def rollback(
    ident: Annotated[str, typer.Argument(help="Project id or name.")],
    version: Annotated[int, typer.Argument(help="Version number to put live again (see 'pombolt versions').")],
    as_json: AsJson = False,
) -> None:
    """Put an earlier version live again: no generation, only differing files uploaded, a restoring commit."""
    from usecases.iterate import create_rollback_run

    store = boot()
    project = find_project(store, get_settings().default_tenant, ident)
    try:
        run_row = create_rollback_run(store, project, version)
        prepare_target(project.target_ref)
    except PomBoltError as exc:
        bad_input(exc)
    execute(store, project.id, run_row.id, as_json)


def execute(store: Any, project_id: str, run_id: str, as_json: bool) -> None:
    """Run the pipeline flow on a queued run, printing its phases, then its report; exit 1 unless verified."""
    from flows.pipeline import requirements_to_deployment

    if not as_json:
        err.print(f"[bold]Pom-Bolt[/] run {run_id[:12]} of project {project_id[:12]}", highlight=False)
    watcher = PhaseWatcher(store, run_id, quiet=as_json)
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
        print_report(report)
    if report["status"] != "verified":
        if failure is not None and not isinstance(failure, Exception):  # Ctrl-C and friends
            raise failure
        if failure is not None and not report.get("error"):  # the run never started: nothing on the row says why
            err.print(f"error: the run could not start: {safe_message(failure)}", highlight=False, markup=False)
        raise typer.Exit(1)


class PhaseWatcher(threading.Thread):
    """Prints each phase as it starts and ends, by watching the state store."""

    def __init__(self, store: Any, run_id: str, quiet: bool) -> None:
        super().__init__(daemon=True)
        self.store, self.run_id, self.quiet = store, run_id, quiet
        self.stopped = threading.Event()
        self.seen: dict[str, str] = {}

    def poll(self) -> None:
        """Print what changed since the last poll."""
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
        """Poll five times a second until :meth:`finish`."""
        while not self.stopped.wait(0.2):
            try:
                self.poll()
            except Exception:  # noqa: S112 - a transient read error must not kill the watcher
                continue

    def finish(self) -> None:
        """Stop polling, then print what is left."""
        self.stopped.set()
        self.join(timeout=2)
        self.poll()
