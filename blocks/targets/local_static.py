"""Local static sites: folders served by the detached static server (DESIGN §8, embedded mode).

Layout under the sites root (``<data_dir>/sites`` unless configured)::

    <site_id>                          -> .releases/<site_id>/<release>   (relative symlink: the live site)
    .releases/<site_id>/<release>/     one folder per deployed snapshot (release = snapshot id[:16])
    .releases/<site_id>/<release>.manifest.json   its manifest; written last, so it marks a complete release
    .releases/<site_id>/history.json   release names in activation order (newest last), for pruning

A deploy builds the new release in a temporary folder — files whose SHA-256 and mode equal a file of the
live release are hard-linked from it, only new or changed files are written (and counted as uploaded) —
renames it into place, then repoints ``<site_id>`` atomically (a temporary symlink and ``os.replace``), so a
reader sees the old release or the new one, never a mix. Releases beyond the newest ``keep_releases`` are
pruned.

Each site is its own origin: the static server serves ``<site_id>`` at ``http://<site_id>.localhost:<port>/``
(chosen by the ``Host`` header) and only from the release the site symlink points at; ``.releases``, other
sites and dot-files are never served (see :mod:`ops.static_server`). A custom ``base_url`` with ``{site}``
(``http://{site}.localhost:8080/``) keeps that; one without serves every site under one origin
(``<base_url>/<site_id>/``), only for a server of your own.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from blocks._local import require_writable
from blocks.naming import repository_name
from blocks.targets import static_host as static_server
from blocks.targets._common import deploy_result
from blocks.targets.base import DeploymentTarget, DeployRequest, DeployResult, SiteState
from core.errors import ConfigError, Conflict, DeployFailed
from core.settings import get_settings
from core.snapshots import Manifest, SnapshotStore

__all__ = ["LocalStaticSite", "site_name"]

_PROVIDER = "local-static"
_SITE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # a host name label: the site is <site_id>.localhost
_STALE_TMP_SECONDS = 600.0


def site_name(project_name: str, project_id: str) -> str:
    """The site id of a project: a slug of its name plus a short id suffix (``my-app-3f2a9c01``)."""
    return repository_name(project_name, project_id)


class LocalStaticSite(DeploymentTarget):
    """Serves each project's site from a local folder through the detached static server."""

    _block_type_name: ClassVar[str | None] = "Pom-Bolt Local Static Site"
    _block_type_slug: ClassVar[str | None] = "pombolt-local-static-site"
    _description: ClassVar[str | None] = (
        "Sites in a local folder served on loopback, each on its own origin (http://<site>.localhost:<port>/); "
        "each deploy is an atomic switch to a new release."
    )
    #: Both name a folder or a server on the worker: only the operator sets them (DESIGN §6).
    _operator_fields: ClassVar[tuple[str, ...]] = ("root", "base_url")

    root: str | None = Field(
        None,
        title="Sites folder",
        description="Folder holding the sites; default '<POMBOLT_DATA_DIR>/sites'.",
    )
    base_url: str | None = Field(
        None,
        title="Base URL",
        description=(
            "URL of a server for the sites folder, with '{site}' where the site id goes "
            "(http://{site}.localhost:8080/: one origin per site); without '{site}' sites are served at "
            "<base_url>/<site_id>/, all on one origin. Default: start or reuse Pom-Bolt's static server, "
            "which serves each site at http://<site_id>.localhost:<port>/."
        ),
    )
    keep_releases: int = Field(3, ge=1, title="Releases kept", description="Releases kept per site.")

    # --- the port -----------------------------------------------------------------------------------
    def preflight(self) -> None:
        """Check that the sites folder is creatable and writable (and servable without ``base_url``).

        Raises:
            ConfigError: Naming the folder and how to fix it.
        """
        root = self.root_path()
        require_writable(root, "sites")
        if self.base_url is None:
            self._check_served_root(root)

    def deploy(self, snapshots: SnapshotStore, request: DeployRequest, state: SiteState) -> DeployResult:
        """Write the release (only new or changed files), switch the site to it, prune old releases.

        Raises:
            ConfigError: When the folder is unusable or the static server cannot start.
            Conflict: When ``<root>/<site_id>`` exists and is not a symlink this target made.
            DeployFailed: When writing the release fails.
        """
        root = self.root_path()
        site_id = self._site_id(request, state)
        live_url = self._live_url(root, site_id)
        manifest = snapshots.manifest(request.site_snapshot_id)
        releases = root / ".releases" / site_id
        link = root / site_id
        live = self._live_release(link, releases)
        created = live is None
        previous = _read_manifest(releases, live) if live else None
        name = request.site_snapshot_id[:16]
        try:
            releases.mkdir(parents=True, exist_ok=True)
            uploaded, written = (0, 0)
            if not (releases / name).is_dir() or _read_manifest(releases, name) is None:
                uploaded, written = self._build(snapshots, manifest, releases, name, live, previous)
            self._activate(root, link, releases, name)
            self._prune(releases, name)
        except OSError as exc:
            raise DeployFailed(f"cannot write site {site_id} in {root}: {exc.strerror or exc}") from exc
        removed = set(previous.by_path()) - set(manifest.by_path()) if previous else set()
        return deploy_result(
            request,
            state,
            site_id=site_id,
            live_url=live_url,
            deploy_id=request.site_snapshot_id,
            created=created,
            uploaded=(uploaded, written),
            files_deleted=len(removed),
            extra={"release": name},
        )

    def remove(self, state: SiteState) -> None:
        """Remove the site's symlink and all its releases (nothing to do when already gone).

        Raises:
            ConfigError: When the state's site id is not one of ours.
            Conflict: When ``<root>/<site_id>`` is not a symlink.
        """
        if not state.site_id:
            return
        root = self.root_path()
        site_id = self._checked_id(state.site_id)
        link = root / site_id
        if link.is_symlink():
            link.unlink()
        elif link.exists():
            raise Conflict(_PROVIDER, f"{link} is not a site symlink; refusing to delete it")
        shutil.rmtree(root / ".releases" / site_id, ignore_errors=True)

    # --- helpers ------------------------------------------------------------------------------------
    def root_path(self) -> Path:
        """The sites folder (``<data_dir>/sites`` unless configured)."""
        if self.root:
            return Path(self.root).expanduser().resolve()
        return static_server.sites_root(get_settings()).resolve()

    def _live_url(self, root: Path, site_id: str) -> str:
        """Where the site is served: its own origin on Pom-Bolt's static server unless ``base_url`` says else."""
        if self.base_url:
            if "{site}" in self.base_url:
                return self.base_url.replace("{site}", site_id).rstrip("/") + "/"
            return f"{self.base_url.rstrip('/')}/{site_id}/"
        self._check_served_root(root)
        return static_server.site_url(static_server.ensure_running(get_settings()).port, site_id)

    @staticmethod
    def _check_served_root(root: Path) -> None:
        served = static_server.sites_root(get_settings()).resolve()
        if root != served:
            raise ConfigError(
                f"sites folder {root} is not the one Pom-Bolt's static server serves ({served}); "
                "set the block's base_url to a server for that folder, or leave root unset"
            )

    def _site_id(self, request: DeployRequest, state: SiteState) -> str:
        if state.site_id:
            return self._checked_id(state.site_id)
        return site_name(request.project_name, request.project_id)

    @staticmethod
    def _checked_id(site_id: str) -> str:
        if not _SITE_ID.match(site_id):
            raise ConfigError(f"site id {site_id!r} is not a local static site id")
        return site_id

    @staticmethod
    def _live_release(link: Path, releases: Path) -> str | None:
        """The name of the live release, or None for a new site."""
        if link.is_symlink():
            target = Path(os.readlink(link))
            return target.name if target.parent.name == releases.name else None
        if link.exists():
            raise Conflict(_PROVIDER, f"{link} exists and is not a site symlink made by Pom-Bolt")
        return None

    @staticmethod
    def _build(
        snapshots: SnapshotStore,
        manifest: Manifest,
        releases: Path,
        name: str,
        live: str | None,
        previous: Manifest | None,
    ) -> tuple[int, int]:
        """Write release ``name``, hard-linking the live release's identical files.

        Returns:
            Files and bytes actually written.
        """
        reusable = {(e.sha256, e.mode): e.path for e in previous.files} if previous and live else {}
        tmp = releases / f".tmp-{name}-{secrets.token_hex(4)}"
        tmp.mkdir()
        files = written = 0
        try:
            for entry in manifest.files:
                dest = tmp / entry.path
                dest.parent.mkdir(parents=True, exist_ok=True)
                source = reusable.get((entry.sha256, entry.mode))
                if source is not None and live is not None:
                    try:
                        os.link(releases / live / source, dest)
                        continue
                    except OSError:
                        pass  # a different filesystem or a missing file: write it
                dest.write_bytes(snapshots.read_blob(entry.sha256, path=entry.path))
                dest.chmod(0o755 if entry.mode == "100755" else 0o644)
                files, written = files + 1, written + entry.size
            final = releases / name
            if final.exists():  # an incomplete earlier attempt (no manifest): replace it
                shutil.rmtree(final)
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _write_atomic(releases / f"{name}.manifest.json", manifest.canonical())
        return files, written

    @staticmethod
    def _activate(root: Path, link: Path, releases: Path, name: str) -> None:
        """Point ``link`` at the release atomically and record the activation."""
        tmp_link = root / f".{link.name}.{secrets.token_hex(4)}.tmp"
        os.symlink(Path(".releases") / releases.name / name, tmp_link)
        try:
            os.replace(tmp_link, link)
        except OSError:
            tmp_link.unlink(missing_ok=True)
            raise
        history = [n for n in _read_history(releases) if n != name] + [name]
        _write_atomic(releases / "history.json", json.dumps(history).encode())

    def _prune(self, releases: Path, live: str) -> None:
        """Remove releases beyond the newest ``keep_releases`` and stale temporary folders."""
        history = _read_history(releases)
        keep = set(history[-self.keep_releases :]) | {live}
        now = time.time()
        for path in releases.iterdir():
            if path.name.startswith(".tmp-"):
                if now - path.stat().st_mtime > _STALE_TMP_SECONDS:
                    shutil.rmtree(path, ignore_errors=True)
            elif path.is_dir() and path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)
                (releases / f"{path.name}.manifest.json").unlink(missing_ok=True)
        _write_atomic(releases / "history.json", json.dumps([n for n in history if n in keep]).encode())


def _read_manifest(releases: Path, name: str) -> Manifest | None:
    """The manifest of a complete release, or None."""
    try:
        return Manifest.model_validate_json((releases / f"{name}.manifest.json").read_bytes())
    except (OSError, ValueError):
        return None


def _read_history(releases: Path) -> list[str]:
    try:
        data = json.loads((releases / "history.json").read_bytes())
    except (OSError, ValueError):
        return []
    return [str(n) for n in data] if isinstance(data, list) else []


def _write_atomic(path: Path, content: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)
