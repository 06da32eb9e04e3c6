"""What the hosts that keep one named project per site share (Cloudflare Pages, Vercel).

Such a host keeps its project from deploy to deploy: the project is the site (its name is the site id), the
first deploy creates it (``created``, remembered as ``created_by_run`` for compensation) and every deploy is a
new production deployment of it. A provider implements the deployment itself (:meth:`ProjectSite._deploy_files`)
and the project's deletion; the deploy result and the clean-up rule are written here once.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from blocks.targets._common import deleted_since, deploy_result
from blocks.targets.base import DeploymentTarget, DeployRequest, DeployResult, SiteState
from core.errors import ConfigError
from core.files import GeneratedFile
from core.snapshots import SnapshotStore

__all__ = ["ProjectDeploy", "ProjectSite"]


@dataclass(frozen=True)
class ProjectDeploy:
    """What deploying the files did at the host.

    Attributes:
        deploy_id: The host's id of the deployment.
        project_url: The URL the host serves the project at (used unless the Block sets ``site_url``).
        created: Whether this deploy created the project.
        uploaded: Files and bytes uploaded.
        requests: API requests made.
    """

    deploy_id: str
    project_url: str
    created: bool
    uploaded: tuple[int, int]
    requests: int


class ProjectSite(DeploymentTarget):
    """A deployment target that deploys to one named project at a host, uploading only files the host lacks."""

    #: The host's name, for messages (``Vercel``).
    _host: ClassVar[str]
    #: The project names the host accepts, and the rule in words.
    _name_pattern: ClassVar[re.Pattern[str]]
    _name_rule: ClassVar[str]

    project_name: str
    site_url: str | None

    def deploy(self, snapshots: SnapshotStore, request: DeployRequest, state: SiteState) -> DeployResult:
        """Deploy the snapshot as a new production deployment of the project and wait until it is live.

        Raises:
            ConfigError: The project name is invalid, or the host refuses the files (see the provider).
            DeployFailed: The deployment failed or did not finish in time.
            ProviderError: An API call failed (auth, rejected, unavailable).
        """
        self._check_name()
        manifest = snapshots.manifest(request.site_snapshot_id)
        done = self._deploy_files(snapshots.files(request.site_snapshot_id), state)
        return deploy_result(
            request,
            state,
            site_id=self.project_name,
            live_url=self.site_url or done.project_url,
            deploy_id=done.deploy_id,
            created=done.created,
            uploaded=done.uploaded,
            files_deleted=deleted_since(snapshots, state, manifest),
            requests=done.requests,
        )

    def remove(self, state: SiteState) -> None:
        """Delete the project, only when a run created it (``created_by_run`` is set); a gone project is fine."""
        if state.created_by_run and state.site_id:
            self._delete_project(state.site_id)

    @abstractmethod
    def _deploy_files(self, files: Sequence[GeneratedFile], state: SiteState) -> ProjectDeploy:
        """Make a production deployment of ``files`` (creating the project when needed) and wait until it is live."""

    @abstractmethod
    def _delete_project(self, name: str) -> None:
        """Delete the project ``name`` (already gone: nothing to do)."""

    def _check_name(self) -> None:
        if not self._name_pattern.match(self.project_name):
            raise ConfigError(f"{self._host} project name {self.project_name!r} is invalid; use {self._name_rule}")
