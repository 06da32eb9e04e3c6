"""A stateful fake of the Cloudflare Pages API (projects, deployments, direct-upload assets) and of the sites.

Routes live under ``/client/v4`` like the real API, so a client points at ``<url>/client/v4``; behind Prism
the upstream is ``<url>/client/v4`` and the client points at the Prism URL (PRISM_NOTES item 5).

Behaviour modelled on the real service: the ``{success, errors, messages, result}`` envelope; API tokens for
``/accounts/...``; a JWT from ``upload-token`` required by ``/pages/assets/*``; assets stored by key, shared by
every project of the fake (as Cloudflare's asset store is); a deployment whose manifest names an asset that
was never uploaded fails; deployments start ``queued`` and reach ``deploy``/``success`` after
``polls_before_ready`` reads. The production deployment of each project is served at
``<url>/_sites/<project>/<path>`` (``site_url(project)``).
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import mimetypes
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.fakes.base import FakeService, Request, Response, route

__all__ = ["FakeCloudflare"]

_API = "/client/v4"
_ACCOUNT = _API + r"/accounts/(?P<account>[^/]+)/pages/projects"
_PROJECT = _ACCOUNT + r"/(?P<project>[^/]+)"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Deployment:
    id: str
    project: str
    branch: str
    manifest: dict[str, str]
    created_on: str
    polls_left: int
    fail: bool = False


@dataclass
class _Project:
    id: str
    name: str
    production_branch: str
    created_on: str
    deployments: list[_Deployment] = field(default_factory=list)
    live: _Deployment | None = None


class FakeCloudflare(FakeService):
    """Fake Cloudflare Pages API plus the ``*.pages.dev`` sites it serves.

    Attributes:
        projects: Pages projects by name.
        assets: Uploaded assets by key: (bytes, content type).
        jwts: Upload JWTs issued so far, with the project each is for.
        jwt_uses: Asset calls each newly issued JWT allows before it "expires" (None = unlimited).
        polls_before_ready: Reads of a new deployment that still answer ``queued``.
        fail_next: When True, the next deployment fails in its ``deploy`` stage.
    """

    name = "fake-cloudflare"

    def __init__(self, *, tokens: set[str] | frozenset[str] = frozenset(), polls_before_ready: int = 1) -> None:
        super().__init__(tokens=tokens)
        self.projects: dict[str, _Project] = {}
        self.assets: dict[str, tuple[bytes, str]] = {}
        self.jwts: dict[str, str] = {}
        self.jwt_uses: int | None = None
        self._jwt_left: dict[str, int] = {}
        self.polls_before_ready = polls_before_ready
        self.fail_next = False

    # ----- helpers ---------------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        """Base URL a client uses without Prism (``<url>/client/v4``)."""
        return self.url + _API

    def site_url(self, project: str) -> str:
        """Where the production deployment of ``project`` is served."""
        return f"{self.url}/_sites/{project}/"

    def error_body(self, status: int, message: str) -> Any:
        """Cloudflare's failure envelope."""
        return {
            "success": False,
            "errors": [{"code": 8000000 + status, "message": message}],
            "messages": [],
            "result": None,
        }

    @staticmethod
    def ok(result: Any, **extra: Any) -> Response:
        """A success envelope."""
        return Response(200, {"success": True, "errors": [], "messages": [], "result": result, **extra})

    def _project_json(self, p: _Project) -> dict[str, Any]:
        return {
            "id": p.id,
            "name": p.name,
            "subdomain": f"{p.name}.pages.dev",
            "production_branch": p.production_branch,
            "created_on": p.created_on,
            "domains": [f"{p.name}.pages.dev"],
        }

    def _deployment_json(self, d: _Deployment) -> dict[str, Any]:
        if d.polls_left > 0:
            stage = {"name": "queued", "status": "active", "started_on": d.created_on, "ended_on": None}
        else:
            status = "failure" if d.fail else "success"
            stage = {"name": "deploy", "status": status, "started_on": d.created_on, "ended_on": _now()}
        short = d.id[:8]
        return {
            "id": d.id,
            "short_id": short,
            "project_id": self.projects[d.project].id,
            "project_name": d.project,
            "environment": "production" if d.branch == self.projects[d.project].production_branch else "preview",
            "url": f"https://{short}.{d.project}.pages.dev",
            "aliases": [f"https://{d.branch}.{d.project}.pages.dev"],
            "created_on": d.created_on,
            "modified_on": d.created_on,
            "latest_stage": stage,
            "stages": [stage],
            "deployment_trigger": {"type": "ad_hoc", "metadata": {"branch": d.branch}},
            "is_skipped": False,
        }

    def _check_jwt(self, request: Request) -> Response | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token not in self.jwts:
            return self.error(401, "invalid upload JWT")
        left = self._jwt_left.get(token)
        if left is not None:
            if left <= 0:
                body = {"success": False, "errors": [{"code": 8000013, "message": "Expired JWT"}], "messages": []}
                return Response(401, {**body, "result": None})
            self._jwt_left[token] = left - 1
        return None

    def _hashes(self, request: Request) -> list[str] | Response:
        body = request.json()
        hashes = body.get("hashes") if isinstance(body, dict) else None
        if not isinstance(hashes, list) or not all(isinstance(h, str) and len(h) == 32 for h in hashes):
            return self.error(400, "hashes must be a list of 32-character asset keys")
        return hashes

    # ----- projects --------------------------------------------------------------------------------
    @route("GET", _ACCOUNT)
    def list_projects(self, request: Request) -> Response:
        if denied := self.require_bearer(request):
            return denied
        page, per_page = int(request.query.get("page", 1)), int(request.query.get("per_page", 10))
        items = [self._project_json(p) for p in self.projects.values()]
        chunk = items[(page - 1) * per_page : page * per_page]
        info = {"page": page, "per_page": per_page, "count": len(chunk), "total_count": len(items)}
        return self.ok(chunk, result_info=info)

    @route("POST", _ACCOUNT)
    def create_project(self, request: Request) -> Response:
        if denied := self.require_bearer(request):
            return denied
        body = request.json() or {}
        name = body.get("name")
        if not isinstance(name, str) or not name:
            return self.error(400, "project name is required")
        if name in self.projects:
            return self.error(409, "A project with this name already exists. Choose a different project name.")
        project = _Project(str(uuid.uuid4()), name, body.get("production_branch") or "main", _now())
        self.projects[name] = project
        return self.ok(self._project_json(project))

    @route("GET", _PROJECT)
    def get_project(self, request: Request) -> Response:
        if denied := self.require_bearer(request):
            return denied
        project = self.projects.get(request.params["project"])
        return self.ok(self._project_json(project)) if project else self.error(404, "Project not found.")

    @route("DELETE", _PROJECT)
    def delete_project(self, request: Request) -> Response:
        if denied := self.require_bearer(request):
            return denied
        if self.projects.pop(request.params["project"], None) is None:
            return self.error(404, "Project not found.")
        return self.ok(None)

    @route("GET", _PROJECT + "/upload-token")
    def upload_token(self, request: Request) -> Response:
        if denied := self.require_bearer(request):
            return denied
        if request.params["project"] not in self.projects:
            return self.error(404, "Project not found.")
        claims = {"max_file_count_allowed": 20000, "exp": 9999999999, "sub": request.params["project"]}
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        jwt = f"eyJhbGciOiJIUzI1NiJ9.{payload}.{secrets.token_urlsafe(16)}"
        self.jwts[jwt] = request.params["project"]
        if self.jwt_uses is not None:
            self._jwt_left[jwt] = self.jwt_uses
        return self.ok({"jwt": jwt})

    # ----- assets ----------------------------------------------------------------------------------
    @route("POST", _API + "/pages/assets/check-missing")
    def check_missing(self, request: Request) -> Response:
        if denied := self._check_jwt(request):
            return denied
        hashes = self._hashes(request)
        if isinstance(hashes, Response):
            return hashes
        return self.ok([h for h in hashes if h not in self.assets])

    @route("POST", _API + "/pages/assets/upload")
    def upload(self, request: Request) -> Response:
        if denied := self._check_jwt(request):
            return denied
        items = request.json()
        if not isinstance(items, list) or not items:
            return self.error(400, "expected a non-empty JSON array of assets")
        for item in items:
            if item.get("base64") is not True:
                return self.error(400, "only base64 payloads are accepted")
            content = base64.b64decode(item["value"], validate=True)
            self.assets[item["key"]] = (content, item["metadata"]["contentType"])
        return self.ok(None)

    @route("POST", _API + "/pages/assets/upsert-hashes")
    def upsert_hashes(self, request: Request) -> Response:
        if denied := self._check_jwt(request):
            return denied
        hashes = self._hashes(request)
        return hashes if isinstance(hashes, Response) else self.ok(None)

    # ----- deployments -----------------------------------------------------------------------------
    @route("POST", _PROJECT + "/deployments")
    def create_deployment(self, request: Request) -> Response:
        if denied := self.require_bearer(request):
            return denied
        project = self.projects.get(request.params["project"])
        if project is None:
            return self.error(404, "Project not found.")
        parts = _multipart(request)
        if "manifest" not in parts:
            return self.error(400, "a direct upload needs a 'manifest' part")
        manifest = json.loads(parts["manifest"])
        unknown = [key for key in manifest.values() if key not in self.assets]
        if unknown:
            return self.error(400, f"manifest names {len(unknown)} asset(s) that were never uploaded")
        branch = parts.get("branch", b"").decode() or project.production_branch
        deployment = _Deployment(str(uuid.uuid4()), project.name, branch, manifest, _now(), self.polls_before_ready)
        deployment.fail, self.fail_next = self.fail_next, False
        project.deployments.append(deployment)
        return self.ok(self._deployment_json(deployment))

    @route("GET", _PROJECT + r"/deployments/(?P<deployment>[^/]+)")
    def get_deployment(self, request: Request) -> Response:
        if denied := self.require_bearer(request):
            return denied
        project = self.projects.get(request.params["project"])
        found = [d for d in (project.deployments if project else []) if d.id == request.params["deployment"]]
        if not found:
            return self.error(404, "Deployment not found.")
        deployment = found[0]
        body = self._deployment_json(deployment)  # what this read reports; the next read is one step on
        if deployment.polls_left > 0:
            deployment.polls_left -= 1
        elif not deployment.fail and project is not None and deployment.branch == project.production_branch:
            project.live = deployment
        return self.ok(body)

    # ----- the sites -------------------------------------------------------------------------------
    @route("GET", r"/_sites/(?P<project>[^/]+)/(?P<path>.*)")
    def serve(self, request: Request) -> Response:
        project = self.projects.get(request.params["project"])
        live = project.live if project else None
        path = "/" + (request.params["path"] or "index.html")
        if live is None or path not in live.manifest:
            return Response(404, "not found")
        content, ctype = self.assets[live.manifest[path]]
        return Response(200, content, {"Content-Type": ctype or mimetypes.guess_type(path)[0] or "text/plain"})


def _multipart(request: Request) -> dict[str, bytes]:
    """Parse a multipart/form-data body into {part name: bytes} with the stdlib e-mail parser."""
    head = f"Content-Type: {request.headers.get('Content-Type', '')}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    parts: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            parts[name] = payload
    return parts
