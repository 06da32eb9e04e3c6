"""Netlify sites through the file-digest deploy API (FLOWS.md (b)); a thin client on :mod:`core.http`.

Netlify has no maintained Python SDK, so this module makes the few calls it needs with our HTTP factory
(which retries transient failures and honours 429 ``Retry-After``):

1. the site: the one kept in :class:`SiteState` (re-read), else one named like the project
   (``GET /sites?name=``, exact match on the client side), else ``POST /sites`` (this run created it);
2. ``POST /sites/{id}/deploys`` with the full map ``/path -> SHA-1`` of the site snapshot;
3. ``PUT /deploys/{id}/files/{path}`` for one file per digest in ``required`` (nothing else is uploaded);
4. poll ``GET /deploys/{id}`` with bounded exponential back-off until ``ready``; ``error`` becomes
   :class:`~core.errors.DeployFailed` with Netlify's message, and so does a deploy still not ready at the limit.

Netlify allows few deploys a minute: creating a deploy takes a slot of the global concurrency limit
``netlify-api`` (``rate_limit(..., strict=True)``), but only inside a Prefect flow or task run. Outside
one (a script, a benchmark, the contract tests) there is no Prefect server to hold the limit, and a strict
limit would fail instead of limiting, so the helper is a no-op there; Netlify's own 429s are still honoured.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar
from urllib.parse import quote

import tenacity
from pydantic import BaseModel, Field, SecretStr

from blocks.targets._common import deleted_since, deploy_result
from blocks.targets._hashing import sha1_hex
from blocks.targets.base import DeploymentTarget, DeployRequest, DeployResult, SiteState
from blocks.targets.local_static import site_name
from core.concurrency import NETLIFY_LIMIT, provider_slot
from core.errors import DeployFailed, PomBoltError
from core.http import ProviderClient, make_client
from core.snapshots import Manifest, SnapshotStore

__all__ = ["NetlifySite"]

_PROVIDER = "netlify"
_DONE = frozenset({"ready", "error", "rejected"})


_INTENT = "netlify-site-create"


class _CreateIntent(BaseModel):
    """Which run is about to create a site."""

    run_id: str


def _creator(snapshots: SnapshotStore, name: str) -> str | None:
    try:
        intent: _CreateIntent = snapshots.get_record(_INTENT, name, _CreateIntent)
    except PomBoltError:
        return None
    return intent.run_id


class NetlifySite(DeploymentTarget):
    """Deploys each project's site to its own Netlify site, uploading only the files Netlify lacks."""

    _block_type_name: ClassVar[str | None] = "Pom-Bolt Netlify Site"
    _block_type_slug: ClassVar[str | None] = "pombolt-netlify"
    _description: ClassVar[str | None] = (
        "Netlify file-digest deploys: one site per project, created on the first deploy and reused after."
    )

    token: SecretStr = Field(title="Token", description="Netlify personal access token.")
    api_url: str = Field(
        "https://api.netlify.com/api/v1", title="API URL", description="Netlify API base URL (tests: a fake)."
    )
    team: str | None = Field(
        None, title="Team", description="Account (team) slug new sites are created in; default your own."
    )
    poll_interval: float = Field(1.0, gt=0, title="Poll interval", description="First wait between polls (s).")
    poll_max_interval: float = Field(5.0, gt=0, title="Longest poll interval", description="Back-off cap (s).")
    ready_timeout: float = Field(
        300.0, gt=0, title="Ready timeout", description="Most seconds a deploy may take to become ready."
    )
    upload_workers: int = Field(4, ge=1, le=16, title="Parallel uploads", description="Uploads run at once.")

    # --- the port -----------------------------------------------------------------------------------
    def preflight(self) -> None:
        """Check the token with a read (``GET /sites``); no side effects.

        Raises:
            AuthFailed: Netlify rejected the token.
            ProviderError: Netlify is unreachable or refused the call.
        """
        with self._client() as client:
            client.get("/sites", params={"filter": "all", "per_page": 1})

    def deploy(self, snapshots: SnapshotStore, request: DeployRequest, state: SiteState) -> DeployResult:
        """Deploy the site snapshot as a new production deploy of the project's site.

        Raises:
            DeployFailed: Netlify reported ``error``, or the deploy was not ready within ``ready_timeout``.
            ProviderError: A call failed (bad token, rate limited past the retry budget, ...).
        """
        manifest = snapshots.manifest(request.site_snapshot_id)
        digests = {e.path: sha1_hex(snapshots.read_blob(e.sha256, path=e.path)) for e in manifest.files}
        with self._client() as client:
            site, created = self._site(client, snapshots, request, state)
            provider_slot(NETLIFY_LIMIT)
            files = {f"/{path}": digest for path, digest in digests.items()}
            deploy = client.json("POST", f"/sites/{quote(site['id'], safe='')}/deploys", json={"files": files})
            deploy_id = str(deploy["id"])
            uploaded, sent = self._upload(client, snapshots, manifest, digests, deploy)
            final = self._wait_ready(client, deploy_id, site)
            requests = client.stats.requests
        live_url = str(site.get("ssl_url") or site.get("url") or final.get("ssl_url") or "").rstrip("/") + "/"
        return deploy_result(
            request,
            state,
            site_id=str(site["id"]),
            live_url=live_url,
            deploy_id=deploy_id,
            created=created,
            uploaded=(uploaded, sent),
            files_deleted=deleted_since(snapshots, state, manifest),
            requests=requests,
            extra={"site_name": site.get("name")},
        )

    def remove(self, state: SiteState) -> None:
        """Delete the Netlify site (nothing to do when it is already gone)."""
        if not state.site_id:
            return
        with self._client() as client:
            client.delete(f"/sites/{quote(state.site_id, safe='')}", expected=(404,))

    # --- helpers ------------------------------------------------------------------------------------
    def _client(self) -> ProviderClient:
        return make_client(
            _PROVIDER,
            self.api_url.rstrip("/"),
            token=self.token,
            headers={"Accept": "application/json"},
            block_name=getattr(self, "_block_document_name", None),
        )

    def _site(
        self, client: ProviderClient, snapshots: SnapshotStore, request: DeployRequest, state: SiteState
    ) -> tuple[dict[str, Any], bool]:
        """The project's site and whether this run created it.

        Before creating a site, the run writes a small intent record; a site found by name later (say the
        answer to the create was lost and the task retried) counts as created by this run only when that
        record names this run — so compensation removes it, and never a site another run made.
        """
        if state.site_id:
            response = client.get(f"/sites/{quote(state.site_id, safe='')}", expected=(404,))
            if response.status_code != 404:
                return dict(response.json()), False
        name = site_name(request.project_name, request.project_id)
        found = client.json("GET", "/sites", params={"name": name, "filter": "all"}) or []
        for site in found:
            if isinstance(site, dict) and site.get("name") == name:
                return site, _creator(snapshots, name) == request.run_id
        snapshots.put_record(_INTENT, name, _CreateIntent(run_id=request.run_id))
        body: dict[str, Any] = {"name": name}
        if self.team:
            body["account_slug"] = self.team
        return dict(client.json("POST", "/sites", json=body)), True

    def _upload(
        self,
        client: ProviderClient,
        snapshots: SnapshotStore,
        manifest: Manifest,
        digests: dict[str, str],
        deploy: dict[str, Any],
    ) -> tuple[int, int]:
        """Upload one file per required digest; return files and bytes sent."""
        required = set(deploy.get("required") or [])
        by_path = manifest.by_path()
        todo: dict[str, str] = {}
        for path, digest in sorted(digests.items()):
            if digest in required and digest not in todo.values():
                todo[path] = digest
        deploy_id = quote(str(deploy["id"]), safe="")

        def put(path: str) -> int:
            data = snapshots.read_blob(by_path[path].sha256, path=path)
            client.put(
                f"/deploys/{deploy_id}/files/{quote(path, safe='')}",
                content=data,
                headers={"Content-Type": "application/octet-stream"},
            )
            return len(data)

        with ThreadPoolExecutor(max_workers=self.upload_workers) as pool:
            sizes = list(pool.map(put, todo))
        return len(sizes), sum(sizes)

    def _wait_ready(self, client: ProviderClient, deploy_id: str, site: dict[str, Any]) -> dict[str, Any]:
        """Poll the deploy until ``ready``; raise DeployFailed on ``error`` or when out of time."""
        path = f"/deploys/{quote(deploy_id, safe='')}"
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda d: str(d.get("state")) not in _DONE),
            wait=tenacity.wait_exponential(multiplier=self.poll_interval, max=self.poll_max_interval),
            stop=tenacity.stop_after_delay(self.ready_timeout),
            retry_error_callback=lambda s: s.outcome.result() if s.outcome else {},
        )
        deploy: dict[str, Any] = retrying(lambda: dict(client.json("GET", path)))
        state = str(deploy.get("state"))
        where = f"Netlify deploy {deploy_id} of site {site.get('name') or site.get('id')}"
        if state == "ready":
            return deploy
        if state in ("error", "rejected"):
            message = deploy.get("error_message") or "no message from Netlify"
            raise DeployFailed(f"{where} failed ({state}): {message}; fix the site files and deploy again")
        raise DeployFailed(
            f"{where} was still '{state}' after {self.ready_timeout:g} s; check it in Netlify's dashboard, "
            "then deploy again (or raise the block's ready_timeout)",
            retryable=True,
        )
