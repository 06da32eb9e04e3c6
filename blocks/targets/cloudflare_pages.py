"""Cloudflare Pages through the direct-upload flow wrangler uses (``shared/contracts/FLOWS.md`` §c).

Why not the official ``cloudflare`` SDK: it is generated (Stainless) from the same OpenAPI schema as
``cloudflare.openapi.json``, whose create-deployment operation documents only the ``branch`` part of the
multipart body — the SDK cannot send the ``manifest`` part a direct upload needs — and the upload-token
and ``/pages/assets/*`` endpoints are not in the schema at all. Using it for the project calls alone would
add a large package with its own retry layer (DESIGN §5: never two retry layers on one call) for three GET/
POST calls, so every call goes through :func:`core.http.make_client` instead.

A deploy:

0. finds the Pages project in the account's list, creating it on first use (``created`` and
   ``created_by_run`` are set only then);
1. gets an upload JWT for the project;
2. keys each file by BLAKE3 (:func:`~blocks.targets._hashing.cloudflare_asset_key`);
3. asks ``check-missing`` which keys Cloudflare lacks and uploads only those, in buckets of at most 40 MiB
   and 2,000 files, with the JWT (a JWT rejected with 401 — expired — is replaced once, as wrangler does);
4. marks every key as used (``upsert-hashes``; a failure there only makes the next deploy slower);
5. creates the deployment with its manifest (multipart, API token) and polls it until its ``deploy``
   stage succeeds; a failed stage raises :class:`~core.errors.DeployFailed`.

Every API call first takes a slot of the global limit ``cloudflare-api`` (see ``core/concurrency.py``);
429 and ``Retry-After`` are honoured by the HTTP factory.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import httpx
from pydantic import Field, SecretStr

from blocks.targets._common import content_type, poll_until
from blocks.targets._hashing import cloudflare_asset_key
from blocks.targets._project import ProjectDeploy, ProjectSite
from blocks.targets.base import SiteState
from core.concurrency import CLOUDFLARE_LIMIT, provider_slot
from core.errors import AuthFailed, ConfigError, DeployFailed, ProviderError
from core.files import GeneratedFile
from core.http import ProviderClient, make_client

__all__ = ["CloudflarePagesSite"]

log = logging.getLogger("pombolt.targets.cloudflare")

_PROVIDER = "cloudflare"
_MAX_FILE = 25 * 1024 * 1024  # wrangler MAX_ASSET_SIZE
_BUCKET_BYTES = 40 * 1024 * 1024
_BUCKET_FILES = 2000
_PAGE_SIZE = 100
#: Files wrangler sends as deployment parts (or never uploads) instead of as assets.
_SPECIAL_PARTS = ("_headers", "_redirects", "_routes.json")
_SKIPPED = ("_worker.js",)


class CloudflarePagesSite(ProjectSite):
    """Deploys site snapshots to one Cloudflare Pages project by direct upload."""

    _host: ClassVar[str] = "Cloudflare Pages"
    _name_pattern: ClassVar[re.Pattern[str]] = re.compile(r"^[a-z0-9][a-z0-9-]{0,57}$")
    _name_rule: ClassVar[str] = "1-58 lowercase letters, digits and dashes, starting with a letter or digit"

    _block_type_name: ClassVar[str | None] = "Pom-Bolt Cloudflare Pages"
    _block_type_slug: ClassVar[str | None] = "pombolt-cloudflare-pages"
    _description: ClassVar[str | None] = (
        "A Cloudflare Pages project fed by direct upload: only files Cloudflare lacks are uploaded."
    )

    api_token: SecretStr = Field(
        ..., title="API token", description="Cloudflare API token with 'Cloudflare Pages: Edit' permission."
    )
    account_id: str = Field(..., title="Account id", description="Cloudflare account id (32 hex characters).")
    project_name: str = Field(
        ...,
        title="Project name",
        description="Pages project name (lowercase letters, digits, dashes); created on first deploy.",
    )
    production_branch: str = Field("main", title="Production branch", description="Branch deployed to.")
    api_url: str = Field(
        "https://api.cloudflare.com/client/v4", title="API URL", description="Base URL of the Cloudflare API."
    )
    site_url: str | None = Field(
        None,
        title="Site URL",
        description="URL the site is served at (a custom domain); default https://<project subdomain>/.",
    )

    # --- the port -----------------------------------------------------------------------------------
    def preflight(self) -> None:
        """Check the project name, the token and the account by listing the account's Pages projects.

        Raises:
            ConfigError: The project name is invalid.
            AuthFailed: The token is rejected or lacks Pages permission.
        """
        self._check_name()
        with self._client() as client:
            self._find_project(client)

    # --- project ------------------------------------------------------------------------------------
    def _deploy_files(self, files: Sequence[GeneratedFile], state: SiteState) -> ProjectDeploy:
        """Upload what Cloudflare lacks, create the deployment and wait until its deploy stage succeeds.

        Raises:
            ConfigError: A file above Cloudflare's 25 MiB limit.
        """
        assets, parts = _split(files)
        with self._client() as client:
            project = self._find_project(client)
            created = project is None
            if project is None:
                project = self._create_project(client)
            keys = {f.path: cloudflare_asset_key(f.path, f.content) for f in assets}
            uploaded, uploaded_bytes, asset_requests = self._upload_assets(client, assets, keys)
            deployment = self._create_deployment(client, keys, parts)
            deployment = self._wait(client, str(deployment["id"]))
            requests = client.stats.requests + asset_requests
        url = _production_url(project, self.project_name)
        return ProjectDeploy(str(deployment["id"]), url, created, (uploaded, uploaded_bytes), requests)

    def _delete_project(self, name: str) -> None:
        with self._client() as client:
            provider_slot(CLOUDFLARE_LIMIT)
            client.request("DELETE", f"{self._projects_path()}/{name}", expected=(404,))  # 404: already gone

    # --- project ------------------------------------------------------------------------------------
    def _find_project(self, client: ProviderClient) -> dict[str, Any] | None:
        # Listing, not GET-by-name: a missing project would be a 404 whose documented body is unusable.
        page = 1
        while True:
            body = self._call(client, "GET", self._projects_path(), params={"page": page, "per_page": _PAGE_SIZE})
            projects = body.get("result") or []
            for project in projects:
                if isinstance(project, dict) and project.get("name") == self.project_name:
                    return project
            info = body.get("result_info") or {}
            total = info.get("total_count")
            if len(projects) < _PAGE_SIZE or (isinstance(total, int) and page * _PAGE_SIZE >= total):
                return None
            page += 1

    def _create_project(self, client: ProviderClient) -> dict[str, Any]:
        payload = {"name": self.project_name, "production_branch": self.production_branch}
        body = self._call(client, "POST", self._projects_path(), json=payload)
        result = body.get("result")
        if not isinstance(result, dict):
            raise ProviderError(_PROVIDER, f"creating Pages project {self.project_name} returned no project")
        log.info("created Cloudflare Pages project %s", self.project_name)
        return result

    # --- assets -------------------------------------------------------------------------------------
    def _upload_assets(
        self, client: ProviderClient, assets: Sequence[GeneratedFile], keys: dict[str, str]
    ) -> tuple[int, int, int]:
        """Upload the assets Cloudflare lacks; return (files, bytes, requests made with the JWT)."""
        all_keys = sorted(set(keys.values()))
        with _AssetSession(self, client) as session:
            missing = set(session.call("/pages/assets/check-missing", {"hashes": all_keys}).get("result") or [])
            todo: dict[str, GeneratedFile] = {}
            for f in assets:
                if keys[f.path] in missing:
                    todo.setdefault(keys[f.path], f)
            for bucket in _buckets(todo):
                payload = [
                    {
                        "key": key,
                        "value": base64.b64encode(f.content).decode("ascii"),
                        "metadata": {"contentType": content_type(f.path)},
                        "base64": True,
                    }
                    for key, f in bucket
                ]
                session.call("/pages/assets/upload", payload)
            try:
                session.call("/pages/assets/upsert-hashes", {"hashes": all_keys})
            except ProviderError as exc:  # wrangler only warns: the next deploy uploads a little more
                log.warning("Cloudflare upsert-hashes failed (the next deploy may upload more): %s", exc)
            return len(todo), sum(len(f.content) for f in todo.values()), session.requests

    def _upload_token(self, client: ProviderClient) -> SecretStr:
        body = self._call(client, "GET", f"{self._project_path()}/upload-token")
        jwt = (body.get("result") or {}).get("jwt")
        if not isinstance(jwt, str) or not jwt:
            raise ProviderError(_PROVIDER, "the upload-token answer holds no JWT; try again later")
        return SecretStr(jwt)

    # --- deployment ---------------------------------------------------------------------------------
    def _create_deployment(
        self, client: ProviderClient, keys: dict[str, str], parts: Sequence[GeneratedFile]
    ) -> dict[str, Any]:
        manifest = json.dumps({f"/{path}": key for path, key in sorted(keys.items())})
        # Form fields are parts without a file name; httpx encodes them as multipart/form-data.
        fields: dict[str, tuple[str | None, bytes, str | None]] = {
            "manifest": (None, manifest.encode(), None),
            "branch": (None, self.production_branch.encode(), None),
        }
        fields.update({f.path: (f.path, f.content, "application/octet-stream") for f in parts})
        encoded = httpx.Request("POST", self.api_url, files=fields)
        content = encoded.read()
        headers = {"Content-Type": encoded.headers["Content-Type"]}
        body = self._call(client, "POST", f"{self._project_path()}/deployments", content=content, headers=headers)
        result = body.get("result")
        if not isinstance(result, dict) or not result.get("id"):
            raise ProviderError(_PROVIDER, "creating the deployment returned no deployment id")
        return result

    def _wait(self, client: ProviderClient, deployment_id: str) -> dict[str, Any]:
        path = f"{self._project_path()}/deployments/{deployment_id}"

        def fetch() -> dict[str, Any]:
            result = self._call(client, "GET", path).get("result")
            return result if isinstance(result, dict) else {}

        deployment = poll_until(fetch, _finished, f"Cloudflare Pages deployment {deployment_id}")
        stage = deployment.get("latest_stage") or {}
        if stage.get("status") != "success":
            raise DeployFailed(
                f"Cloudflare Pages deployment {deployment_id} of project {self.project_name} failed in stage "
                f"'{stage.get('name')}' ({stage.get('status')}); read its build log in the Cloudflare dashboard "
                "and run again"
            )
        return deployment

    # --- plumbing -----------------------------------------------------------------------------------
    def _call(self, client: ProviderClient, method: str, path: str, **options: Any) -> dict[str, Any]:
        provider_slot(CLOUDFLARE_LIMIT)
        body = client.json(method, path, **options)
        if not isinstance(body, dict):
            raise ProviderError(_PROVIDER, f"{method} {path} answered without the usual envelope")
        if body.get("success") is False:
            errors = body.get("errors") or [{}]
            message = errors[0].get("message") if isinstance(errors[0], dict) else errors[0]
            raise ProviderError(_PROVIDER, f"{method} {path} failed: {message}")
        return body

    def _client(self) -> ProviderClient:
        return make_client(_PROVIDER, self.api_url, token=self.api_token, block_name=self._name())

    def _name(self) -> str | None:
        return self._block_document_name

    def _projects_path(self) -> str:
        return f"/accounts/{self.account_id}/pages/projects"

    def _project_path(self) -> str:
        return f"{self._projects_path()}/{self.project_name}"


class _AssetSession:
    """Calls to ``/pages/assets/*`` with the upload JWT, fetching a new JWT once when it expired (401)."""

    def __init__(self, site: CloudflarePagesSite, api: ProviderClient) -> None:
        self._site, self._api = site, api
        self._client: ProviderClient | None = None
        self._used = 0

    def __enter__(self) -> _AssetSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._close()

    @property
    def requests(self) -> int:
        """HTTP attempts made with JWTs so far."""
        return self._used + (self._client.stats.requests if self._client else 0)

    def call(self, path: str, payload: Any) -> dict[str, Any]:
        """POST ``payload`` to an asset endpoint; on 401 get a new JWT and try once more."""
        try:
            return self._site._call(self._jwt_client(), "POST", path, json=payload)
        except AuthFailed:
            log.info("Cloudflare upload JWT rejected (expired?); fetching a new one")
            self._close()
            return self._site._call(self._jwt_client(), "POST", path, json=payload)

    def _jwt_client(self) -> ProviderClient:
        if self._client is None:
            token = self._site._upload_token(self._api)
            self._client = make_client(_PROVIDER, self._site.api_url, token=token, block_name=self._site._name())
        return self._client

    def _close(self) -> None:
        if self._client is not None:
            self._used += self._client.stats.requests
            self._client.close()
            self._client = None


def _split(files: Sequence[GeneratedFile]) -> tuple[list[GeneratedFile], list[GeneratedFile]]:
    """Separate assets from the files sent as deployment parts; refuse files above 25 MiB."""
    assets: list[GeneratedFile] = []
    parts: list[GeneratedFile] = []
    for f in files:
        if f.path in _SKIPPED or f.path.startswith("functions/"):
            continue  # Pages Functions are not deployed by this target
        if len(f.content) > _MAX_FILE:
            raise ConfigError(f"file {f.path} is {len(f.content)} bytes; Cloudflare Pages allows at most 25 MiB")
        (parts if f.path in _SPECIAL_PARTS else assets).append(f)
    return assets, parts


def _buckets(todo: dict[str, GeneratedFile]) -> Iterator[list[tuple[str, GeneratedFile]]]:
    """Yield upload buckets, largest files first, each at most 40 MiB and 2,000 files."""
    bucket: list[tuple[str, GeneratedFile]] = []
    size = 0
    for key, f in sorted(todo.items(), key=lambda item: -len(item[1].content)):
        if bucket and (size + len(f.content) > _BUCKET_BYTES or len(bucket) >= _BUCKET_FILES):
            yield bucket
            bucket, size = [], 0
        bucket.append((key, f))
        size += len(f.content)
    if bucket:
        yield bucket


def _finished(deployment: dict[str, Any]) -> bool:
    stage = deployment.get("latest_stage") or {}
    if stage.get("status") in ("failure", "canceled"):
        return True
    return stage.get("name") == "deploy" and stage.get("status") == "success"


def _production_url(project: dict[str, Any], name: str) -> str:
    subdomain = project.get("subdomain") or f"{name}.pages.dev"
    return f"https://{subdomain}/"
