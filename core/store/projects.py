"""Projects and what they have shipped: tables ``project``, ``version`` and ``livecheck``.

A version is the numbered record (1, 2, 3 … per project) of a verified run: its snapshots, commit, deploy
and live URL. A live check is one later re-check of a version's live URL (flow ``verify-live-sites``).
Listing projects by the status of their latest run reads table ``run`` as well.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from core.errors import ConcurrentUpdate, NotFound
from core.models import LiveCheck, Project, Run, RunStatus, Version
from core.store.engine import StoreEngine


class ProjectStore(StoreEngine):
    """Projects, their versions and the live checks of those versions."""

    # --- projects -----------------------------------------------------------------------------------
    def create_project(self, project: Project) -> Project:
        """Insert a new project.

        Raises:
            IntegrityError: When the tenant already has a project of that name, or the tenant does not exist.
        """
        return self._insert(project)

    def get_project(self, project_id: str, tenant_id: str | None = None) -> Project:
        """Return a project (of the tenant, when given).

        Raises:
            NotFound: When absent or owned by another tenant.
        """
        with self.session() as s:
            row = s.get(Project, project_id)
        if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
            raise NotFound(f"no project {project_id!r}; list projects with 'pombolt status'")
        return row

    def find_project(self, tenant_id: str, name: str) -> Project | None:
        """Return the tenant's project called ``name``, or None."""
        with self.session() as s:
            return s.exec(select(Project).where(Project.tenant_id == tenant_id, Project.name == name)).first()

    def list_projects(self, tenant_id: str, *, offset: int = 0, limit: int = 50) -> Sequence[Project]:
        """A page of a tenant's projects, newest first."""
        with self.session() as s:
            return s.exec(
                select(Project)
                .where(Project.tenant_id == tenant_id)
                .order_by(col(Project.created_at).desc())
                .offset(offset)
                .limit(limit)
            ).all()

    def list_projects_with_status(
        self, tenant_id: str, *, status: RunStatus | None, offset: int = 0, limit: int = 50
    ) -> Sequence[Project]:
        """A page of a tenant's projects, newest first, optionally only those whose latest run has ``status``."""
        if status is None:
            return self.list_projects(tenant_id, offset=offset, limit=limit)
        latest = (
            select(Run.project_id, func.max(Run.created_at).label("latest"))
            .where(Run.tenant_id == tenant_id)
            .group_by(Run.project_id)
            .subquery()
        )
        stmt = (
            select(Project)
            .join(latest, col(Project.id) == latest.c.project_id)
            .join(Run, (col(Run.project_id) == latest.c.project_id) & (col(Run.created_at) == latest.c.latest))
            .where(Project.tenant_id == tenant_id, Run.status == status)
            .order_by(col(Project.created_at).desc())
            .offset(offset)
            .limit(limit)
        )
        with self.session() as s:
            return s.exec(stmt).all()

    # --- versions -----------------------------------------------------------------------------------
    def add_version(self, run: Run) -> Version:
        """Write the next version of the run's project from a verified run.

        Raises:
            ConcurrentUpdate: When concurrent writers kept taking the next number (three attempts).
        """
        assert run.snapshot_id and run.site_snapshot_id and run.live_url
        for _attempt in range(3):  # a concurrent writer may take the same number; bounded
            with self.session() as s:
                top = s.exec(select(func.max(Version.number)).where(Version.project_id == run.project_id)).one()
                row = Version(
                    tenant_id=run.tenant_id,
                    project_id=run.project_id,
                    run_id=run.id,
                    number=(top or 0) + 1,
                    snapshot_id=run.snapshot_id,
                    site_snapshot_id=run.site_snapshot_id,
                    commit_sha=run.commit_sha,
                    deploy_id=run.deploy_id,
                    live_url=run.live_url,
                )
                s.add(row)
                try:
                    s.commit()
                    return row
                except IntegrityError:
                    s.rollback()
        raise ConcurrentUpdate(f"could not number a new version of project {run.project_id}; retry the run")

    def versions(self, project_id: str) -> Sequence[Version]:
        """All versions of a project, oldest first."""
        with self.session() as s:
            return s.exec(select(Version).where(Version.project_id == project_id).order_by(col(Version.number))).all()

    def find_version(self, version_id: str) -> Version | None:
        """Return the version with this id (any tenant), or None."""
        with self.session() as s:
            return s.get(Version, version_id)

    def latest_versions(self) -> list[Version]:
        """The newest version of every project that has one (all tenants), oldest version first."""
        newest = (
            select(Version.project_id, func.max(Version.number).label("top"))
            .group_by(col(Version.project_id))
            .subquery()
        )
        stmt = (
            select(Version)
            .join(newest, (col(Version.project_id) == newest.c.project_id) & (col(Version.number) == newest.c.top))
            .order_by(col(Version.created_at))
        )
        with self.session() as s:
            return list(s.exec(stmt).all())

    # --- live checks --------------------------------------------------------------------------------
    def add_live_check(self, check: LiveCheck) -> LiveCheck:
        """Record one re-check of a version's live URL."""
        return self._insert(check)

    def live_checks(self, project_id: str) -> Sequence[LiveCheck]:
        """All recorded live checks of a project, oldest first."""
        with self.session() as s:
            return s.exec(
                select(LiveCheck).where(LiveCheck.project_id == project_id).order_by(col(LiveCheck.checked_at))
            ).all()
