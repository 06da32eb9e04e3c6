"""Helpers every deployment target that needs them shares: the result of a deploy, the files a deploy
removed, the content type a file is served with, and polling a deploy until it is final."""

from __future__ import annotations

import contextlib
import mimetypes
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import tenacity

from blocks.targets.base import DeployRequest, DeployResult, SiteState
from core.errors import DeployFailed, PomBoltError
from core.settings import get_settings
from core.snapshots import Manifest, SnapshotStore

__all__ = ["SNAPSHOT_KEY", "content_type", "deleted_since", "deploy_result", "poll_until"]

T = TypeVar("T")

#: ``SiteState.extra`` key holding the site snapshot id of the last successful deploy.
SNAPSHOT_KEY = "site_snapshot_id"
_MAX_POLL_WAIT = 5.0
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".xml": "application/xml",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".map": "application/json",
}


def deploy_result(
    request: DeployRequest,
    state: SiteState,
    *,
    site_id: str | None,
    live_url: str,
    deploy_id: str,
    created: bool,
    uploaded: tuple[int, int] = (0, 0),
    files_deleted: int = 0,
    requests: int = 0,
    extra: Mapping[str, Any] | None = None,
) -> DeployResult:
    """The result of a deploy: the site state to keep for the next deploy and what this one did.

    The run that created the site, if any, is remembered for clean-up (compensation); the snapshot just
    deployed is recorded under :data:`SNAPSHOT_KEY`, so the next deploy can count the files it removes.

    Args:
        request: The deploy request.
        state: The site state before this deploy (its ``extra`` is kept, then updated with ``extra``).
        site_id: The provider's id of the site (a project name, a folder, a repository id).
        live_url: The URL the site is served at.
        deploy_id: The provider's id of what this deploy made.
        created: Whether this deploy created the site.
        uploaded: Files and bytes uploaded.
        files_deleted: Files of the previous deploy that are gone now.
        requests: API requests made.
        extra: Provider details to keep in the state.
    """
    return DeployResult(
        live_url=live_url,
        deploy_id=deploy_id,
        state=SiteState(
            site_id=site_id,
            url=live_url,
            created_by_run=request.run_id if created else state.created_by_run,
            extra={**state.extra, **(extra or {}), SNAPSHOT_KEY: request.site_snapshot_id},
        ),
        created=created,
        files_uploaded=uploaded[0],
        bytes_uploaded=uploaded[1],
        files_deleted=files_deleted,
        requests=requests,
    )


def deleted_since(snapshots: SnapshotStore, state: SiteState, manifest: Manifest) -> int:
    """Count the files the previously deployed snapshot had and ``manifest`` lacks (0 when unknown)."""
    previous_id = state.extra.get(SNAPSHOT_KEY)
    if not isinstance(previous_id, str) or previous_id == manifest.snapshot_id:
        return 0
    with contextlib.suppress(PomBoltError):
        previous = snapshots.manifest(previous_id).by_path()
        return len(previous.keys() - manifest.by_path().keys())
    return 0


def content_type(path: str) -> str:
    """The Content-Type a site file is served with (our table, then ``mimetypes``, then octet-stream)."""
    name = path.rsplit("/", 1)[-1].lower()
    ext = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    return _TYPES.get(ext) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def poll_until(fetch: Callable[[], T], done: Callable[[T], bool], what: str) -> T:
    """Call ``fetch`` until ``done(result)``, waiting with exponential back-off, bounded by the deploy timeout.

    The first wait is ``Timeouts.verify_poll`` and waits grow up to 5 s; the whole wait is bounded by
    ``Timeouts.task_deploy``. Errors raised by ``fetch`` end the polling at once.

    Args:
        fetch: Reads the current state (one API call).
        done: Tells whether that state is final (ready or failed).
        what: What is awaited, for the timeout message.

    Returns:
        The first final state.

    Raises:
        DeployFailed: The state was not final within the deploy timeout (retryable).
    """
    timeouts = get_settings().timeouts
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_result(lambda value: not done(value)),
        wait=tenacity.wait_exponential(multiplier=timeouts.verify_poll, max=_MAX_POLL_WAIT),
        stop=tenacity.stop_after_delay(timeouts.task_deploy),
        reraise=True,
    )
    try:
        return retrying(fetch)
    except tenacity.RetryError as exc:
        raise DeployFailed(
            f"{what} was not finished after {timeouts.task_deploy:.0f} s; check the provider's dashboard, "
            "then run again (or raise POMBOLT_TIMEOUT_TASK_DEPLOY)",
            retryable=True,
        ) from exc
