"""A stateful fake of Netlify's REST API (file-digest deploys) that also serves the deployed sites.

API routes live under ``/api/v1`` (so Prism's upstream is ``<fake>/api/v1``); live sites are served at
``<fake>/sites-live/<site name>/<path>`` from the site's published deploy, which is each site's
``ssl_url``. Behaviour follows FLOWS.md (b): ``required`` lists the SHA-1 digests Netlify does not hold yet
(each once), uploads are checked against the deploy's file map, a deploy goes ``uploading`` →
``processing`` → ``ready`` as it is polled, and the newest ready deploy is published.

Knobs for tests: ``processing_polls`` (polls a deploy stays in ``processing``), ``stuck`` (deploys never
leave ``processing``), ``fail_next`` (the next deploy ends in ``error`` with that message).

Example:
    with FakeNetlify(tokens={"t0k"}) as fake:
        httpx.get(f"{fake.api_url}/sites", headers={"Authorization": "Bearer t0k"})
"""

from __future__ import annotations

import hashlib
import itertools
import mimetypes
import re
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.base import FakeService, Request, Response, route

_SHA1 = re.compile(r"^[0-9a-f]{40}$")
API = "/api/v1"


@dataclass
class FakeDeploy:
    """One deploy: its file map (site path -> SHA-1), what is still required, and its state."""

    id: str
    site_id: str
    files: dict[str, str]
    required: list[str]
    state: str = "uploading"
    polls: int = 0
    error_message: str | None = None
    uploads: list[str] = field(default_factory=list)


class FakeNetlify(FakeService):
    """Netlify's sites, deploys and file uploads, plus a CDN for the published deploys."""

    name = "fake-netlify"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sites: dict[str, dict[str, Any]] = {}
        self.deploys: dict[str, FakeDeploy] = {}
        self.blobs: dict[str, dict[str, bytes]] = {}  # site id -> SHA-1 -> bytes (dedup per site)
        self.processing_polls = 1
        self.stuck = False
        self.fail_next: str | None = None
        self._ids = itertools.count(1)

    @property
    def api_url(self) -> str:
        """Base URL of the API (what a client without Prism uses)."""
        return f"{self.url}{API}"

    def error_body(self, status: int, message: str) -> Any:
        """Netlify's error shape: ``{code, message}``."""
        return {"code": status, "message": message}

    # --- sites ------------------------------------------------------------------------------------
    def _site_json(self, site: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in site.items() if k != "published"}

    @route("GET", rf"{API}/sites")
    def list_sites(self, request: Request) -> Response:
        if denied := self.require_bearer(request):
            return denied
        name = request.query.get("name")
        found = [s for s in self.sites.values() if name is None or name in s["name"]]  # substring, like Netlify
        return Response(200, [self._site_json(s) for s in found])

    @route("POST", rf"{API}/sites")
    def create_site(self, request: Request) -> Response:
        if denied := self.require_bearer(request):
            return denied
        body = request.json() or {}
        name = body.get("name") or f"site-{next(self._ids)}"
        if any(s["name"] == name for s in self.sites.values()):
            return self.error(422, f"name {name} is already taken")
        site_id = f"site-{next(self._ids):04d}"
        live = f"{self.url}/sites-live/{name}"
        self.sites[site_id] = {
            "id": site_id,
            "name": name,
            "url": live,
            "ssl_url": live,
            "admin_url": f"{self.url}/admin/{name}",
            "account_slug": body.get("account_slug") or "personal",
            "state": "current",
            "published": None,
        }
        return Response(201, self._site_json(self.sites[site_id]))

    @route("GET", rf"{API}/sites/(?P<site_id>[^/]+)")
    def get_site(self, request: Request) -> Response:
        if denied := self.require_bearer(request):
            return denied
        site = self.sites.get(request.params["site_id"])
        return Response(200, self._site_json(site)) if site else self.error(404, "Not Found")

    @route("DELETE", rf"{API}/sites/(?P<site_id>[^/]+)")
    def delete_site(self, request: Request) -> Response:
        if denied := self.require_bearer(request):
            return denied
        if self.sites.pop(request.params["site_id"], None) is None:
            return self.error(404, "Not Found")
        return Response(204)

    # --- deploys ----------------------------------------------------------------------------------
    @route("POST", rf"{API}/sites/(?P<site_id>[^/]+)/deploys")
    def create_deploy(self, request: Request) -> Response:
        if denied := self.require_bearer(request):
            return denied
        site_id = request.params["site_id"]
        if site_id not in self.sites:
            return self.error(404, "Not Found")
        files = (request.json() or {}).get("files")
        if not isinstance(files, dict) or not files:
            return self.error(422, "files must be a non-empty map of path to SHA-1")
        for path, digest in files.items():
            if not path.startswith("/") or not isinstance(digest, str) or not _SHA1.match(digest):
                return self.error(422, f"bad file entry {path!r}: paths start with '/', digests are SHA-1 hex")
        held = self.blobs.setdefault(site_id, {})
        required = sorted({d for d in files.values() if d not in held})
        deploy = FakeDeploy(id=f"dep-{next(self._ids):04d}", site_id=site_id, files=dict(files), required=required)
        if self.fail_next is not None:
            deploy.error_message, self.fail_next = self.fail_next, None
        if not required:
            deploy.state = "processing"
        self.deploys[deploy.id] = deploy
        return Response(200, self._deploy_json(deploy))

    def _deploy_json(self, deploy: FakeDeploy) -> dict[str, Any]:
        site = self.sites.get(deploy.site_id, {"name": "gone", "ssl_url": ""})
        body: dict[str, Any] = {
            "id": deploy.id,
            "site_id": deploy.site_id,
            "state": deploy.state,
            "name": site["name"],
            "ssl_url": site["ssl_url"],
            "deploy_ssl_url": f"{self.url}/deploys-live/{deploy.id}",
            "required": [d for d in deploy.required if d not in self.blobs.get(deploy.site_id, {})],
            "required_functions": [],
        }
        if deploy.state == "error" and deploy.error_message:
            body["error_message"] = deploy.error_message
        return body

    def _advance(self, deploy: FakeDeploy) -> None:
        """One poll's worth of progress."""
        if deploy.state in ("ready", "error"):
            return
        if any(d not in self.blobs.get(deploy.site_id, {}) for d in deploy.required):
            return  # still waiting for uploads
        if deploy.state == "uploading":
            deploy.state = "processing"
            return
        deploy.polls += 1
        if self.stuck or deploy.polls <= self.processing_polls:
            return
        if deploy.error_message:
            deploy.state = "error"
            return
        deploy.state = "ready"
        if deploy.site_id in self.sites:
            self.sites[deploy.site_id]["published"] = deploy.id

    @route("GET", rf"{API}/deploys/(?P<deploy_id>[^/]+)")
    @route("GET", rf"{API}/sites/(?P<site_id>[^/]+)/deploys/(?P<deploy_id>[^/]+)")
    def get_deploy(self, request: Request) -> Response:
        if denied := self.require_bearer(request):
            return denied
        deploy = self.deploys.get(request.params["deploy_id"])
        if deploy is None:
            return self.error(404, "Not Found")
        self._advance(deploy)
        return Response(200, self._deploy_json(deploy))

    @route("PUT", rf"{API}/deploys/(?P<deploy_id>[^/]+)/files/(?P<path>.+)")
    def upload_file(self, request: Request) -> Response:
        if denied := self.require_bearer(request):
            return denied
        deploy = self.deploys.get(request.params["deploy_id"])
        if deploy is None:
            return self.error(404, "Not Found")
        path = "/" + request.params["path"].lstrip("/")
        digest = hashlib.sha1(request.body).hexdigest()  # Netlify's digest is SHA-1
        if deploy.files.get(path) != digest:
            return self.error(422, f"{path}: content does not match the digest in the deploy's file map")
        self.blobs.setdefault(deploy.site_id, {})[digest] = request.body
        deploy.uploads.append(path)
        mime = mimetypes.guess_type(path)[0] or "application/octet-stream"
        return Response(200, {"id": digest, "path": path, "sha": digest, "mime_type": mime, "size": len(request.body)})

    # --- the CDN ----------------------------------------------------------------------------------
    @route("GET", r"/sites-live/(?P<name>[^/]+)(?P<rest>/.*)?")
    def serve_site(self, request: Request) -> Response:
        site = next((s for s in self.sites.values() if s["name"] == request.params["name"]), None)
        deploy = self.deploys.get(site["published"]) if site and site["published"] else None
        if deploy is None:
            return Response(404, "Not Found")
        rest = request.params.get("rest") or "/"
        path = rest + "index.html" if rest.endswith("/") else rest
        digest = deploy.files.get(path)
        data = self.blobs.get(deploy.site_id, {}).get(digest or "")
        if data is None:
            return Response(404, "Not Found")
        mime = mimetypes.guess_type(path)[0] or "application/octet-stream"
        return Response(200, data, {"Content-Type": mime, "Cache-Control": "public, max-age=0"})


class PrismBinaryBypass(FakeService):
    """A front for a client: sends every request through Prism, except uploads whose body is not UTF-8.

    Prism's proxy decodes request bodies as UTF-8 before forwarding, so bytes such as a PNG's 0x89 arrive
    at the upstream replaced by U+FFFD (stoplightio/prism#1321, #2349). Text uploads (and every JSON call)
    still go through Prism and are checked; binary uploads go straight to the fake's API. Every
    ``sl-violations`` header Prism sends back is kept in :attr:`violations`.
    """

    name = "prism-binary-bypass"
    _KEEP = (
        "content-type",
        "retry-after",
        "sl-violations",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    )

    def __init__(self, prism_url: str, direct_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        import httpx

        self.prism_url, self.direct_url = prism_url.rstrip("/"), direct_url.rstrip("/")
        self.violations: list[str] = []
        self.bypassed: list[str] = []
        self._http = httpx.Client(timeout=30.0)

    def stop(self) -> None:
        """Stop serving and close the forwarding client."""
        super().stop()
        self._http.close()

    @route("*", r"/.*")
    def forward(self, request: Request) -> Response:
        binary = False
        try:
            request.body.decode("utf-8")
        except UnicodeDecodeError:
            binary = True
        base = self.direct_url if binary else self.prism_url
        if binary:
            self.bypassed.append(request.path)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        upstream = self._http.request(request.method, base + request.raw_path, headers=headers, content=request.body)
        found = upstream.headers.get("sl-violations")
        if found:
            self.violations.append(f"{request.method} {request.path}: {found}")
        kept = {k: v for k, v in upstream.headers.items() if k.lower() in self._KEEP}
        return Response(upstream.status_code, upstream.content if upstream.content else None, kept)
