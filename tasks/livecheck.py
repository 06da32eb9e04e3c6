"""Re-checking live sites: does each project's latest version still serve what was deployed?

A check fetches the version's live URL once (through the shared HTTP client, so transient errors are
retried there) and compares the SHA-256 of what is served with the ``index.html`` of the version's site
snapshot. Every check is recorded as a :class:`~core.models.LiveCheck` row; flow ``verify-live-sites``
(``flows/verify_live.py``) runs it on a schedule and emits ``pombolt.site.check.failed`` for failures.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import func
from sqlmodel import col, select

from core.errors import PomBoltError
from core.http import make_client
from core.models import LiveCheck, Version
from core.runtime import get_snapshots
from core.store import Store

#: Longest message stored on a failed check.
MAX_MESSAGE = 500


def latest_versions(store: Store) -> list[Version]:
    """The newest version of every project that has one (all tenants), oldest project first."""
    newest = (
        select(Version.project_id, func.max(Version.number).label("top")).group_by(col(Version.project_id)).subquery()
    )
    stmt = (
        select(Version)
        .join(newest, (col(Version.project_id) == newest.c.project_id) & (col(Version.number) == newest.c.top))
        .order_by(col(Version.created_at))
    )
    with store.session() as s:
        return list(s.exec(stmt).all())


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
        with make_client("live-site", version.live_url, headers={"Cache-Control": "no-cache"}) as client:
            response = client.get(version.live_url, expected=range(400, 500))
        check.status_code = response.status_code
        check.got_sha256 = hashlib.sha256(response.content).hexdigest()
        if response.status_code != 200:
            check.message = f"{version.live_url} answered HTTP {response.status_code}; redeploy the project"
        elif check.got_sha256 != check.expected_sha256:
            check.message = (
                f"{version.live_url} serves an index.html with sha256 {check.got_sha256[:12]}, version "
                f"{version.number} deployed {check.expected_sha256[:12]}; someone changed the site — redeploy it"
            )
        else:
            check.ok = True
    except PomBoltError as exc:
        check.message = f"{exc.code}: {exc.message}"[:MAX_MESSAGE]
    with store.session() as s:
        s.add(check)
        s.commit()
    return check


def checks(store: Store, project_id: str) -> Sequence[LiveCheck]:
    """All recorded checks of a project, oldest first."""
    with store.session() as s:
        return s.exec(
            select(LiveCheck).where(LiveCheck.project_id == project_id).order_by(col(LiveCheck.checked_at))
        ).all()
