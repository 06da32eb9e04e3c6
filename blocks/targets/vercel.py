"""Vercel through its REST API: a deployment of SHA-1 file references (``shared/contracts/FLOWS.md`` §d).

Why not the ``vercel`` Python SDK: its surface for deployments with file uploads is not documented as
covering the ``missing_files`` round trip, and it brings its own HTTP and retry layers (DESIGN §5: never
two retry layers on one call); four endpoints are all we need, so every call goes through
:func:`core.http.make_client`.

A deploy, the way Vercel's own client saves uploads:

1. ensures the project on first use (``POST /v11/projects``; 409 = it exists and is reused; ``created`` and
   ``created_by_run`` are set only when this run made it);
2. creates the deployment with ``files: [{file, sha, size}]`` (SHA-1 of the bytes);
3. when Vercel answers ``missing_files``, uploads only those digests (``POST /v2/files`` with
   ``x-vercel-digest``, each digest once) and creates the deployment again;
4. polls the deployment until ``READY``; ``ERROR``/``CANCELED`` raise :class:`~core.errors.DeployFailed`
   with Vercel's message.

Every API call first takes a slot of the global limit ``vercel-api`` (``core/concurrency.py``);
429 and ``Retry-After`` are honoured by the HTTP factory.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import Field, SecretStr

from blocks.targets._common import poll_until
from blocks.targets._hashing import sha1_hex
from blocks.targets._project import ProjectDeploy, ProjectSite
from blocks.targets.base import SiteState
from core.concurrency import VERCEL_LIMIT, provider_slot
from core.errors import ConfigError, DeployFailed, ProviderError, ProviderRejected
from core.files import GeneratedFile
from core.http import ProviderClient, make_client

__all__ = ["VercelProject"]

log = logging.getLogger("pombolt.targets.vercel")

_PROVIDER = "vercel"
_FINAL = frozenset({"READY", "ERROR", "CANCELED"})
_MAX_FILES = 15_000  # Vercel's client switches to an archive above this; the server rejects more


class VercelProject(ProjectSite):
    """Deploys site snapshots to one Vercel project, uploading only files Vercel lacks."""

    _host: ClassVar[str] = "Vercel"
    _name_pattern: ClassVar[re.Pattern[str]] = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,98}[a-z0-9])?$")
    _name_rule: ClassVar[str] = "up to 100 lowercase letters, digits, '.', '_' and '-'"

    _block_type_name: ClassVar[str | None] = "Pom-Bolt Vercel"
    _block_type_slug: ClassVar[str | None] = "pombolt-vercel"
    _description: ClassVar[str | None] = (
        "A Vercel project: deployments reference files by SHA-1 and only missing files are uploaded."
    )

    token: SecretStr = Field(..., title="Token", description="Vercel access token.")
    team_id: str | None = Field(None, title="Team id", description="Team to deploy under (teamId); none = personal.")
    project_name: str = Field(
        ..., title="Project name", description="Vercel project name (lowercase); created on first deploy."
    )
    api_url: str = Field("https://api.vercel.com", title="API URL", description="Base URL of the Vercel API.")
    site_url: str | None = Field(
        None,
        title="Site URL",
        description="URL the site is served at (a custom domain); default the deployment's production alias.",
    )

    # --- the port -----------------------------------------------------------------------------------
    def preflight(self) -> None:
        """Check the project name and the token (and team) by listing one deployment.

        Raises:
            ConfigError: The project name is invalid.
            AuthFailed: The token is rejected or has no access to the team.
        """
        self._check_name()
        with self._client() as client:
            self._call(client, "GET", "/v6/deployments", params={"limit": 1})

    # --- steps --------------------------------------------------------------------------------------
    def _deploy_files(self, files: Sequence[GeneratedFile], state: SiteState) -> ProjectDeploy:
        """Create the deployment, upload only the files Vercel reports missing, wait until ``READY``.

        Raises:
            ConfigError: Too many files.
        """
        if len(files) > _MAX_FILES:
            raise ConfigError(f"the site has {len(files)} files; a Vercel deployment takes at most {_MAX_FILES}")
        digests = {f.path: sha1_hex(f.content) for f in files}
        with self._client() as client:
            created = not state.site_id and self._ensure_project(client)
            refs = [{"file": f.path, "sha": digests[f.path], "size": len(f.content)} for f in files]
            deployment, missing = self._create_deployment(client, refs)
            uploaded = (0, 0)
            if missing is not None:
                uploaded = self._upload(client, files, digests, missing)
                deployment, missing = self._create_deployment(client, refs)
            if deployment is None:
                raise ProviderError(
                    _PROVIDER,
                    f"Vercel still reports {len(missing or [])} missing file(s) after uploading them; run again",
                    retryable=True,
                )
            deployment = self._wait(client, str(deployment["id"]))
            requests = client.stats.requests
        return ProjectDeploy(str(deployment["id"]), _production_url(deployment), created, uploaded, requests)

    def _delete_project(self, name: str) -> None:
        with self._client() as client:
            provider_slot(VERCEL_LIMIT)
            client.request("DELETE", f"/v9/projects/{name}", params=self._team(), expected=(404,))

    def _ensure_project(self, client: ProviderClient) -> bool:
        """Create the project; return True when created, False when it already existed."""
        provider_slot(VERCEL_LIMIT)
        response = client.request(
            "POST",
            "/v11/projects",
            params=self._team(),
            json={"name": self.project_name, "framework": None},
            expected=(409,),
        )
        if response.status_code == 409:
            return False
        log.info("created Vercel project %s", self.project_name)
        return True

    def _create_deployment(
        self, client: ProviderClient, refs: Sequence[Mapping[str, Any]]
    ) -> tuple[dict[str, Any] | None, list[str] | None]:
        """Create the deployment; return it, or the digests Vercel reports missing."""
        payload = {
            "name": self.project_name,
            "project": self.project_name,
            "target": "production",
            "files": list(refs),
            "projectSettings": {"framework": None, "buildCommand": None, "outputDirectory": None},
        }
        provider_slot(VERCEL_LIMIT)
        params = {**self._team(), "skipAutoDetectionConfirmation": "1"}
        response = client.request("POST", "/v13/deployments", params=params, json=payload, expected=(400,))
        body = _json(response.json() if response.content else None)
        if response.status_code == 400:
            raw_error = body.get("error")
            error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
            missing = error.get("missing")
            if error.get("code") == "missing_files" and isinstance(missing, list):
                return None, [str(m) for m in missing]
            message = error.get("message") or "no message"
            raise ProviderRejected(
                _PROVIDER,
                f"creating a deployment of {self.project_name} was rejected (HTTP 400): {message}",
                status=400,
            )
        if not body.get("id"):
            raise ProviderError(_PROVIDER, "creating the deployment returned no deployment id")
        return body, None

    def _upload(
        self,
        client: ProviderClient,
        files: Sequence[GeneratedFile],
        digests: Mapping[str, str],
        missing: Sequence[str],
    ) -> tuple[int, int]:
        """Upload one file per missing digest; return (files, bytes) uploaded."""
        by_digest: dict[str, GeneratedFile] = {}
        for f in files:
            by_digest.setdefault(digests[f.path], f)
        count = size = 0
        for digest in dict.fromkeys(missing):
            found = by_digest.get(digest)
            if found is None:
                raise ProviderError(_PROVIDER, f"Vercel asked for digest {digest}, which no file of the site has")
            provider_slot(VERCEL_LIMIT)
            client.request(
                "POST",
                "/v2/files",
                params=self._team(),
                content=found.content,
                headers={"Content-Type": "application/octet-stream", "x-vercel-digest": digest},
                idempotent=True,  # content-addressed: repeating an upload is harmless
            )
            count, size = count + 1, size + len(found.content)
        return count, size

    def _wait(self, client: ProviderClient, deployment_id: str) -> dict[str, Any]:
        def fetch() -> dict[str, Any]:
            return self._call(client, "GET", f"/v13/deployments/{deployment_id}")

        deployment = poll_until(fetch, lambda d: d.get("readyState") in _FINAL, f"Vercel deployment {deployment_id}")
        state = deployment.get("readyState")
        if state != "READY":
            reason = deployment.get("errorMessage") or deployment.get("errorCode") or "no message"
            raise DeployFailed(
                f"Vercel deployment {deployment_id} of project {self.project_name} ended {state}: {reason}; "
                "read its build log in the Vercel dashboard and run again"
            )
        return deployment

    # --- plumbing -----------------------------------------------------------------------------------
    def _call(self, client: ProviderClient, method: str, path: str, **options: Any) -> dict[str, Any]:
        provider_slot(VERCEL_LIMIT)
        return _json(client.json(method, path, params=self._team() | dict(options.pop("params", {})), **options))

    def _team(self) -> dict[str, str]:
        return {"teamId": self.team_id} if self.team_id else {}

    def _client(self) -> ProviderClient:
        return make_client(_PROVIDER, self.api_url, token=self.token, block_name=self._block_document_name)


def _json(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ProviderError(_PROVIDER, "the Vercel API answered with something other than a JSON object")
    return body


def _production_url(deployment: Mapping[str, Any]) -> str:
    aliases = deployment.get("alias")
    host = aliases[0] if isinstance(aliases, list) and aliases else deployment.get("url")
    return f"https://{host}/"
