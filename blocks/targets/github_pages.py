"""GitHub Pages: the site snapshot as one commit on a ``gh-pages`` branch (``pombolt-github-pages``).

A deploy is three steps, all on the GitHub client of :mod:`blocks.repositories.github_client`:

1. **Diff.** Read the branch head's tree (``GET .../git/ref/heads/{branch}``, ``GET .../git/commits/{sha}``
   and, only when the tree differs from the snapshot's locally computed tree id, ``GET .../git/trees/{t}``)
   and count the files whose blob or mode changed and the files that disappear. These are
   ``files_uploaded``/``bytes_uploaded``/``files_deleted``.
2. **Publish.** A :class:`~blocks.repositories.github.GitHubRepositoryTarget` configured with this Block's
   credentials, owner and branch publishes the snapshot (composition, not a copy): one commit, fast-forward
   only, zero writes when the tree is unchanged, the repository found by recorded id, adopted by the
   project's marker, or created. By default the repository is the project's own one (the same name
   ``GitHubRepositoryTarget`` uses), so a project that keeps its source on GitHub gets its site on the
   ``gh-pages`` branch of the same repository; ``repository`` names another one explicitly.
3. **Pages.** ``GET /repos/{o}/{r}/pages``; when Pages is off, ``POST /repos/{o}/{r}/pages`` with
   ``{source: {branch, path: "/"}}`` (201 = this run enabled it; 409 = already enabled, re-read). Pages
   serving another branch is a :class:`~core.errors.Conflict`. Then, unless ``wait_for_build`` is off,
   ``GET .../pages/builds/latest`` is polled (bounded exponential back-off) until the build of the new commit
   is ``built``; ``errored`` is :class:`~core.errors.DeployFailed` with GitHub's message. The live URL is the
   site's ``html_url`` (or ``pages_base_url`` + ``<owner>/<repository>/``).

Compensation (:meth:`GitHubPagesSite.remove`) deletes the repository only when a run of this Block created it
(and it still has the recorded id); otherwise it turns Pages off only when a run of this Block turned it on.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
import tenacity
from pydantic import Field, field_validator

from blocks.naming import repository_name
from blocks.repositories.base import PublishRequest, RepositoryState
from blocks.repositories.git_tree import TreeEntry, blob_id, tree_id
from blocks.repositories.github import GitHubRepositoryTarget
from blocks.repositories.github_client import GitHubAccount, GitHubClient
from blocks.targets._common import deploy_result
from blocks.targets.base import DeploymentTarget, DeployRequest, DeployResult, SiteState
from core.concurrency import GITHUB_LIMIT, provider_slot
from core.errors import Conflict, DeployFailed, ProviderRejected
from core.redaction import redact
from core.snapshots import SnapshotStore

__all__ = ["GitHubPagesSite"]

_PROVIDER = "github"


def _message(response: httpx.Response) -> str:
    """GitHub's ``message`` of an error answer, redacted and short."""
    try:
        body = response.json()
    except ValueError:
        body = None
    text = body.get("message") if isinstance(body, dict) else None
    return redact(str(text or response.reason_phrase or response.status_code))[:300]


class _PagesClient(GitHubClient):
    """The GitHub client plus the four Pages calls."""

    def __enter__(self) -> _PagesClient:
        return self

    def pages(self, full_name: str) -> httpx.Response:
        """``GET /repos/{o}/{r}/pages`` (404 = Pages is off: returned)."""
        return self.http.get(f"/repos/{full_name}/pages", expected=(404,))

    def create_pages(self, full_name: str, branch: str) -> httpx.Response:
        """``POST /repos/{o}/{r}/pages`` (409 already enabled, 422 refused: returned)."""
        provider_slot(GITHUB_LIMIT)
        body = {"source": {"branch": branch, "path": "/"}}
        return self.http.post(f"/repos/{full_name}/pages", json=body, expected=(409, 422))

    def delete_pages(self, full_name: str) -> httpx.Response:
        """``DELETE /repos/{o}/{r}/pages`` (404 = already off: returned)."""
        return self.http.delete(f"/repos/{full_name}/pages", expected=(404,))

    def latest_build(self, full_name: str) -> dict[str, Any] | None:
        """``GET /repos/{o}/{r}/pages/builds/latest``; None while there is no build yet (404)."""
        response = self.http.get(f"/repos/{full_name}/pages/builds/latest", expected=(404,))
        return None if response.status_code == 404 else dict(response.json())


class _Diff:
    """Files of the snapshot that differ from the branch head, and files that disappear."""

    def __init__(self, changed: int = 0, changed_bytes: int = 0, deleted: int = 0) -> None:
        self.changed, self.changed_bytes, self.deleted = changed, changed_bytes, deleted


class GitHubPagesSite(GitHubAccount, DeploymentTarget):
    """Serves each project's site with GitHub Pages from a ``gh-pages`` branch."""

    _block_type_name: ClassVar[str | None] = "Pom-Bolt GitHub Pages Site"
    _block_type_slug: ClassVar[str | None] = "pombolt-github-pages"
    _description: ClassVar[str | None] = (
        "GitHub Pages: the site as one commit on a gh-pages branch, Pages enabled through the API."
    )

    repository: str | None = Field(
        None,
        title="Repository",
        description="Repository name for every project's site; default the project's own repository name.",
    )
    branch: str = Field("gh-pages", title="Branch", description="Branch Pages serves from (path '/').")
    private: bool = Field(
        False, title="Private", description="Create repositories as private (Pages then needs a paid plan)."
    )
    pages_base_url: str | None = Field(
        None,
        title="Pages base URL",
        description="Override of the Pages URL: the live URL becomes <this>/<owner>/<repository>/.",
    )
    wait_for_build: bool = Field(True, title="Wait for build", description="Poll the Pages build until built.")
    poll_interval: float = Field(1.0, gt=0, title="Poll interval", description="First wait between polls (s).")
    poll_max_interval: float = Field(10.0, gt=0, title="Longest poll interval", description="Back-off cap (s).")
    build_timeout: float = Field(
        600.0, gt=0, title="Build timeout", description="Most seconds a Pages build may take to be built."
    )

    @field_validator("repository")
    @classmethod
    def _valid_repository(cls, value: str | None) -> str | None:
        if value is not None and (not value or "/" in value or value in (".", "..")):
            raise ValueError(f"{value!r} is not a repository name (give the name only; the owner is 'owner')")
        return value

    # --- the port -----------------------------------------------------------------------------------
    def preflight(self) -> None:
        """Prove the token and the owner, as the repository target does (``GET /user``, ``GET /orgs/..``).

        Raises:
            AuthFailed: The token is rejected (never retried).
            ConfigError: No token, or the organisation is not visible to the token.
        """
        self._publisher().preflight()

    def deploy(self, snapshots: SnapshotStore, request: DeployRequest, state: SiteState) -> DeployResult:
        """Publish the snapshot to the Pages branch, make sure Pages serves it, and return its URL.

        Raises:
            Conflict: The repository is not the project's, or Pages serves another branch.
            ProviderRejected: GitHub refused to enable Pages (e.g. a private repository on a free plan).
            DeployFailed: The Pages build errored, or was not built within ``build_timeout``.
            AuthFailed, RateLimited, ProviderUnavailable: From GitHub.
        """
        manifest = snapshots.manifest(request.site_snapshot_id)
        contents = {e.path: snapshots.read_blob(e.sha256, path=e.path) for e in manifest.files}
        local: dict[str, tuple[str, str]] = {e.path: (e.mode, blob_id(contents[e.path])) for e in manifest.files}
        with self._client() as gh:
            full = self._full_name(gh, request, state)
            diff = self._diff(gh, full, local, contents)
            repo_state = self._repository_state(gh, full, state)
            published = self._publisher(owner=full.partition("/")[0]).publish(
                snapshots,
                PublishRequest(
                    tenant_id=request.tenant_id,
                    project_id=request.project_id,
                    project_name=request.project_name,
                    run_id=request.run_id,
                    snapshot_id=request.site_snapshot_id,
                    message=f"Deploy site snapshot {request.site_snapshot_id[:12]}",
                ),
                repo_state,
            )
            full = str(published.state.extra.get("full_name") or full)
            page, enabled = self._enable_pages(gh, full)
            if self.wait_for_build:
                self._wait_built(gh, full, published.commit_sha)
            requests = gh.http.stats.requests + published.requests
        extra = {"full_name": full, "branch": self.branch}
        if published.created:
            extra["repository_created_by_run"] = request.run_id
        if enabled:
            extra["pages_enabled_by_run"] = request.run_id
        return deploy_result(
            request,
            state,
            site_id=published.state.repository_id,
            live_url=self._live_url(full, page),
            deploy_id=published.commit_sha,
            created=published.created or enabled,
            uploaded=(diff.changed, diff.changed_bytes),
            files_deleted=diff.deleted,
            requests=requests,
            extra=extra,
        )

    def remove(self, state: SiteState) -> None:
        """Undo what runs of this Block created: the repository if they created it, else Pages if they enabled it.

        Raises:
            Conflict: The repository name now points at a repository with another id.
        """
        full = state.extra.get("full_name")
        if not state.site_id or not isinstance(full, str):
            return
        created_by = state.extra.get("repository_created_by_run")
        if isinstance(created_by, str):
            self._publisher().remove(
                RepositoryState(repository_id=state.site_id, created_by_run=created_by, extra={"full_name": full})
            )
            return
        if not isinstance(state.extra.get("pages_enabled_by_run"), str):
            return
        with self._client() as gh:
            found = gh.repo(full)
            if found.status_code == 404:
                return
            if str(found.json()["id"]) != state.site_id:
                raise Conflict(_PROVIDER, f"{full} is no longer the project's repository; not turning its Pages off")
            gh.delete_pages(full)

    # --- helpers ------------------------------------------------------------------------------------
    def _publisher(self, owner: str | None = None) -> GitHubRepositoryTarget:
        """The repository target that writes the Pages branch (same credentials and branch).

        Args:
            owner: The resolved owner of the site's repository (default this Block's ``owner``).
        """
        target = GitHubRepositoryTarget(
            credentials=self.credentials,
            api_url=self.api_url,
            owner=owner or self.owner,
            branch=self.branch,
            private=self.private,
            description="Site published by Pom-Bolt",
        )
        target._block_document_name = self._block_document_name
        return target

    def _client(self) -> _PagesClient:
        return _PagesClient(self.api_url, self._token(), block_name=self._block_document_name)

    def _full_name(self, gh: GitHubClient, request: DeployRequest, state: SiteState) -> str:
        """``owner/name`` of the repository the site lives in (as recorded, or as it will be named)."""
        recorded = state.extra.get("full_name")
        if isinstance(recorded, str) and state.site_id:
            return recorded
        owner = self.owner or str(gh.user()["login"])
        return f"{owner}/{self.repository or repository_name(request.project_name, request.project_id)}"

    def _repository_state(self, gh: GitHubClient, full: str, state: SiteState) -> RepositoryState:
        """What the repository target should know: the recorded repository, or an explicitly named one."""
        if state.site_id:
            return RepositoryState(repository_id=state.site_id, extra={"full_name": full})
        if self.repository is None:
            return RepositoryState()  # the project's own repository: found by its marker, or created
        found = gh.repo(full)
        if found.status_code == 200:  # the user named it: publishing to its Pages branch is what they asked
            return RepositoryState(repository_id=str(found.json()["id"]), extra={"full_name": full})
        return RepositoryState(extra={"full_name": full})

    def _diff(
        self, gh: GitHubClient, full: str, local: dict[str, tuple[str, str]], contents: dict[str, bytes]
    ) -> _Diff:
        """Count files whose blob or mode differs from the branch head, and files that disappear."""
        head: dict[str, tuple[str, str]] = {}
        found = gh.ref(full, self.branch)
        if found.status_code == 200:
            commit = gh.commit(full, str(found.json()["object"]["sha"]))
            tree = str(commit["tree"]["sha"])
            if tree == tree_id(TreeEntry(path, mode, sha) for path, (mode, sha) in local.items()):
                return _Diff()
            for item in gh.tree(full, tree).get("tree", []):
                if item.get("type") == "blob":
                    head[str(item["path"])] = (str(item["mode"]), str(item["sha"]))
        changed = [path for path, entry in local.items() if head.get(path) != entry]
        return _Diff(len(changed), sum(len(contents[p]) for p in changed), len(set(head) - set(local)))

    def _enable_pages(self, gh: _PagesClient, full: str) -> tuple[dict[str, Any], bool]:
        """The Pages site of ``full`` serving this branch, and whether this call enabled Pages."""
        found = gh.pages(full)
        enabled = False
        if found.status_code == 404:
            made = gh.create_pages(full, self.branch)
            if made.status_code == 422:
                raise ProviderRejected(
                    _PROVIDER,
                    f"GitHub refused to enable Pages for {full} ({_message(made)}); "
                    "Pages on a private repository needs a paid plan: make the repository public "
                    "(Block field 'private': false) or upgrade, then deploy again",
                    status=422,
                )
            enabled = made.status_code == 201
            found = made if enabled else gh.pages(full)  # 409: enabled meanwhile; read what it serves
        page: dict[str, Any] = dict(found.json())
        source = page.get("source") or {}
        if page.get("build_type") == "workflow" or source.get("branch") != self.branch or source.get("path") != "/":
            raise Conflict(
                _PROVIDER,
                f"GitHub Pages of {full} already serve {source.get('branch') or 'a workflow'}"
                f"{source.get('path') or ''}, not {self.branch}/; change the repository's Pages source to "
                f"branch {self.branch!r}, folder '/' (or set another 'repository'), then deploy again",
            )
        return page, enabled

    def _wait_built(self, gh: _PagesClient, full: str, commit_sha: str) -> None:
        """Poll the latest Pages build until the build of ``commit_sha`` is ``built``."""

        def settled(build: dict[str, Any] | None) -> bool:
            return (
                build is not None and build.get("commit") == commit_sha and build.get("status") in ("built", "errored")
            )

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda build: not settled(build)),
            wait=tenacity.wait_exponential(multiplier=self.poll_interval, max=self.poll_max_interval),
            stop=tenacity.stop_after_delay(self.build_timeout),
            retry_error_callback=lambda s: s.outcome.result() if s.outcome else None,
        )
        build: dict[str, Any] | None = retrying(lambda: gh.latest_build(full))
        where = f"GitHub Pages build of {full} at {commit_sha[:12]}"
        if build is not None and settled(build) and build.get("status") == "built":
            return
        if build is not None and settled(build):
            message = redact(str((build.get("error") or {}).get("message") or "no message from GitHub"))[:300]
            raise DeployFailed(f"{where} errored: {message}; fix the site files and deploy again")
        seen = "no build" if build is None else f"latest build {build.get('status')} at {str(build.get('commit'))[:12]}"
        raise DeployFailed(
            f"{where} was not built after {self.build_timeout:g} s ({seen}); check the repository's Pages "
            "settings, then deploy again (or raise the Block's build_timeout)",
            retryable=True,
        )

    def _live_url(self, full: str, page: dict[str, Any]) -> str:
        if self.pages_base_url:
            return f"{self.pages_base_url.rstrip('/')}/{full}/"
        url = page.get("html_url")
        if not url:
            raise DeployFailed(f"GitHub did not return a Pages URL for {full}; set 'pages_base_url' or deploy again")
        return str(url).rstrip("/") + "/"
