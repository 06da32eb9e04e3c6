"""Re-checking live sites: does each project's latest version still serve what was deployed?

A check fetches the version's live URL once (through the shared HTTP client, so transient errors are
retried there) and compares the SHA-256 of what is served with the ``index.html`` of the version's site
snapshot. Every check is recorded as a :class:`~core.models.LiveCheck` row; flow ``verify-live-sites``
(``flows/verify_live.py``) runs it on a schedule and emits ``pombolt.site.check.failed`` for failures.

:func:`probe_index` is the one way Pom-Bolt fetches a live URL and compares its index: these re-checks use it,
and so does phase ``verify`` (:mod:`tasks.verify`), which polls it until the new site is served.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from pydantic import BaseModel

from core.errors import PomBoltError
from core.http import make_client
from core.models import LiveCheck, Version
from core.runtime import get_snapshots
from core.store import Store

#: Longest message stored on a failed check.
MAX_MESSAGE = 500


class IndexProbe(BaseModel):
    """One fetch of a live URL, compared with the ``index.html`` it should serve."""

    url: str
    expected_sha256: str
    status_code: int | None = None
    got_sha256: str | None = None
    error: str | None = None  # why nothing was fetched, after the request layer's retries

    @property
    def ok(self) -> bool:
        """Whether the URL answered 200 with exactly the expected bytes."""
        return self.status_code == 200 and self.got_sha256 == self.expected_sha256

    def describe(self) -> str:
        """What was seen, in a few words (for messages)."""
        if self.error:
            return self.error
        got = (self.got_sha256 or "")[:12]
        return f"HTTP {self.status_code}, index sha256 {got} (want {self.expected_sha256[:12]})"


def probe_index(url: str, expected_sha256: str, *, request_id: str | None = None) -> IndexProbe:
    """Fetch ``url`` once (transient errors retried by the shared client) and hash what it serves.

    Never raises for what the site answers: a 4xx, or an error the request layer gave up on, is in the probe.
    """
    probe = IndexProbe(url=url, expected_sha256=expected_sha256)
    try:
        with make_client("live-site", url, headers={"Cache-Control": "no-cache"}, request_id=request_id) as client:
            response = client.get(url, expected=range(400, 500))
    except PomBoltError as exc:
        return probe.model_copy(update={"error": f"{exc.code}: {exc.message}"[:MAX_MESSAGE]})
    got = hashlib.sha256(response.content).hexdigest()
    return probe.model_copy(update={"status_code": response.status_code, "got_sha256": got})


def latest_versions(store: Store) -> list[Version]:
    """The newest version of every project that has one (all tenants), oldest project first."""
    return store.latest_versions()


def expected_index_sha(version: Version) -> str:
    """SHA-256 of ``index.html`` in the version's site snapshot.

    Raises:
        PomBoltError: When the snapshot is missing or has no ``index.html``.
    """
    entry = get_snapshots(version.tenant_id).manifest(version.site_snapshot_id).by_path().get("index.html")
    if entry is None:
        raise PomBoltError(
            f"site snapshot {version.site_snapshot_id[:12]} of version {version.number} has no index.html; "
            "redeploy a version that has one"
        )
    return entry.sha256


def check_version(store: Store, version: Version) -> LiveCheck:
    """Fetch a version's live URL once, compare it with the site snapshot and record the outcome.

    Returns:
        The recorded check (``ok`` is False with a ``message`` saying what differed).
    """
    check = LiveCheck(
        tenant_id=version.tenant_id,
        project_id=version.project_id,
        version_id=version.id,
        url=version.live_url,
        ok=False,
        expected_sha256="",
    )
    try:
        check.expected_sha256 = expected_index_sha(version)
    except PomBoltError as exc:
        check.message = f"{exc.code}: {exc.message}"[:MAX_MESSAGE]
        return store.add_live_check(check)
    probe = probe_index(version.live_url, check.expected_sha256)
    check.status_code, check.got_sha256, check.ok = probe.status_code, probe.got_sha256, probe.ok
    if probe.error:
        check.message = probe.error
    elif probe.status_code != 200:
        check.message = f"{version.live_url} answered HTTP {probe.status_code}; redeploy the project"
    elif not probe.ok:
        check.message = (
            f"{version.live_url} serves an index.html with sha256 {(probe.got_sha256 or '')[:12]}, version "
            f"{version.number} deployed {check.expected_sha256[:12]}; someone changed the site — redeploy it"
        )
    return store.add_live_check(check)


def checks(store: Store, project_id: str) -> Sequence[LiveCheck]:
    """All recorded checks of a project, oldest first."""
    return store.live_checks(project_id)
