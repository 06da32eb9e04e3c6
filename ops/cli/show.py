"""``pombolt status``, ``versions`` and ``open``: what a project has done, and where it is live."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

from core.errors import PomBoltError
from core.settings import get_settings
from ops.cli._common import bad_input, boot, find_project, find_run, out


def status(
    ident: Annotated[str, typer.Argument(help="Project id, project name or run id.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show a project's latest run: phases, spend, links and error."""
    store = boot()
    run_row = find_run(store, get_settings().default_tenant, ident)
    report = run_report(store, run_row.id)
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        return
    print_report(report)
    for p in report["phases"]:
        out.print(f"  {p['name']:<9} {p['status']}{' (cached)' if p['cached'] else ''}", highlight=False)


def versions(ident: Annotated[str, typer.Argument(help="Project id or name.")]) -> None:
    """List a project's versions (what each verified run put live)."""
    store = boot()
    project = find_project(store, get_settings().default_tenant, ident)
    for v in store.versions(project.id):
        out.print(
            f"{v.number:>3}  {v.created_at:%Y-%m-%d %H:%M:%S}  commit {(v.commit_sha or '-')[:12]}  "
            f"snapshot {v.snapshot_id[:12]}  {v.live_url}",
            highlight=False,
            soft_wrap=True,
        )


def open_(ident: Annotated[str, typer.Argument(help="Project id, name or run id.")]) -> None:
    """Make sure the local static server runs and print the project's live URL."""
    store = boot()
    settings = get_settings()
    run_row = find_run(store, settings.default_tenant, ident)
    project = store.get_project(run_row.project_id)
    live = store.versions(project.id)
    if not live:
        bad_input(f"project {project.name!r} has no live version yet; run it first")
    url = live[-1].live_url or ""
    if project.target_ref == "local-static":
        from blocks.targets.static_host import SITE_DOMAIN, ensure_running, site_url

        try:
            server = ensure_running(settings)
        except PomBoltError as exc:
            bad_input(exc)
        host = urlsplit(url).hostname or ""
        if host.endswith("." + SITE_DOMAIN):  # a restarted server may listen on another port than at deploy
            url = site_url(server.port, host.removesuffix("." + SITE_DOMAIN))
    out.print(url, highlight=False)


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


def print_report(report: dict[str, Any]) -> None:
    """The report for people: status, ids, links, spend and the error."""
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
