"""Small helpers the hosted deployment targets share: polling a deploy, counting deleted files, the result of a
deploy to a named project."""

from __future__ import annotations

import contextlib
import mimetypes
from collections.abc import Callable
from typing import TypeVar

import tenacity

from blocks.targets.base import DeployRequest, DeployResult, SiteState
from core.errors import DeployFailed, PomBoltError
from core.settings import get_settings
from core.snapshots import Manifest, SnapshotStore

__all__ = ["SNAPSHOT_KEY", "content_type", "deleted_since", "poll_until", "project_deploy_result"]

T = TypeVar("T")

#: ``SiteState.extra`` key holding the site snapshot id of the last successful deploy.
SNAPSHOT_KEY = "site_snapshot_id"
_MAX_POLL_WAIT = 5.0


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
    """Guess a file's content type from its extension (``application/octet-stream`` when unknown)."""
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


def project_deploy_result(
    request: DeployRequest,
    state: SiteState,
    *,
    project_name: str,
    live_url: str,
    deploy_id: str,
    created: bool,
    uploaded: tuple[int, int],
    files_deleted: int,
    requests: int,
) -> DeployResult:
    """The result of a deploy to a hosted project that keeps its name from deploy to deploy (Cloudflare
    Pages, Vercel): the project is the site; the run that created it, if any, is remembered for clean-up;
    the snapshot and deployment just made are recorded for the next deploy.

    Args:
        request: The deploy request.
        state: The site state before this deploy.
        project_name: The provider's project name (the site id).
        live_url: The production URL.
        deploy_id: The provider's id of the deployment just made.
        created: Whether this deploy created the project.
        uploaded: Files and bytes uploaded.
        files_deleted: Files of the previous deploy that are gone now.
        requests: API requests made.
    """
    return DeployResult(
        live_url=live_url,
        deploy_id=deploy_id,
        state=SiteState(
            site_id=project_name,
            url=live_url,
            created_by_run=request.run_id if created else state.created_by_run,
            extra={SNAPSHOT_KEY: request.site_snapshot_id, "deployment_id": deploy_id},
        ),
        created=created,
        files_uploaded=uploaded[0],
        bytes_uploaded=uploaded[1],
        files_deleted=files_deleted,
        requests=requests,
    )
