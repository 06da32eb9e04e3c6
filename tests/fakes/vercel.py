"""A stateful fake of the Vercel REST API (projects, file uploads, deployments) and of the sites it serves.

Behaviour modelled on the real service: Bearer tokens; ``POST /v2/files`` stores bytes under the SHA-1 given
in ``x-vercel-digest`` (and refuses bytes that do not hash to it); ``POST /v13/deployments`` answers 400
``missing_files`` with the digests it lacks, else creates the deployment (and the project, when missing);
deployments start ``QUEUED`` and become ``READY`` after ``polls_before_ready`` reads (or ``ERROR`` with a
message when ``fail_next`` is set). The latest ready production deployment of a project is served at
``<url>/_sites/<project>/<path>`` (``site_url(project)``).
"""

from __future__ import annotations

import hashlib
import mimetypes
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.base import FakeService, Request, Response, route

__all__ = ["FakeVercel"]


def _ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Deployment:
    id: str
    project: str
    files: dict[str, str]
    target: str | None
    created_at: int
    polls_left: int
    error: str | None = None


@dataclass
class _Project:
    id: str
    name: str
    created_at: int
    live: _Deployment | None = None
    deployments: list[_Deployment] = field(default_factory=list)


class FakeVercel(FakeService):
    """Fake Vercel API plus the ``*.vercel.app`` sites it serves.

    Attributes:
        projects: Projects by name.
        blobs: Uploaded files by SHA-1.
        deployments: Deployments by id.
        polls_before_ready: Reads of a new deployment that still answer ``QUEUED``.
        fail_next: When set, the next deployment ends ``ERROR`` with this message.
    """

    name = "fake-vercel"

    def __init__(self, *, tokens: set[str] | frozenset[str] = frozenset(), polls_before_ready: int = 1) -> None:
        super().__init__(tokens=tokens)
        self.projects: dict[str, _Project] = {}
        self.blobs: dict[str, bytes] = {}
        self.deployments: dict[str, _Deployment] = {}
        self.polls_before_ready = polls_before_ready
        self.fail_next: str | None = None

    def site_url(self, project: str) -> str:
        """Where the production deployment of ``project`` is served."""
        return f"{self.url}/_sites/{project}/"

    def error_body(self, status: int, message: str) -> Any:
        """Vercel's error shape."""
        return {"error": {"code": "bad_request" if status == 400 else str(status), "message": message}}

    def _project(self, name: str) -> _Project:
        if name not in self.projects:
            self.projects[name] = _Project(f"prj_{secrets.token_hex(10)}", name, _ms())
        return self.projects[name]

    def _deployment_json(self, d: _Deployment) -> dict[str, Any]:
        state = "QUEUED" if d.polls_left > 0 else ("ERROR" if d.error else "READY")
        project = self.projects[d.project]
        body: dict[str, Any] = {
            "id": d.id,
            "url": f"{d.project}-{d.id[4:13].lower()}.vercel.app",
            "name": d.project,
            "projectId": project.id,
            "ownerId": "team_fake",
            "readyState": state,
            "status": state,
            "type": "LAMBDAS",
            "version": 2,
            "createdAt": d.created_at,
            "createdIn": "sfo1",
            "bootedAt": d.created_at,
            "buildingAt": d.created_at,
            "buildSkipped": False,
            "aliasAssigned": state == "READY",
            "alias": [f"{d.project}.vercel.app"] if d.target == "production" else [],
            "public": False,
            "plan": "hobby",
            "regions": ["sfo1"],
            "meta": {},
            "env": [],
            "build": {"env": []},
            "routes": None,
            "inspectorUrl": None,
            "isInConcurrentBuildsQueue": False,
            "isInSystemBuildsQueue": False,
            "projectSettings": {},
            "creator": {"uid": "user_fake"},
            "target": d.target,
        }
        if state == "ERROR":
            body.update(errorCode="BUILD_FAILED", errorMessage=d.error)
        return body

    # ----- projects --------------------------------------------------------------------------------
    @route("POST", r"/v11/projects")
    def create_project(self, request: Request) -> Response:
        if denied := self.require_bearer(request):
            return denied
        name = (request.json() or {}).get("name")
        if not isinstance(name, str) or not name:
            return self.error(400, "name is required")
        if name in self.projects:
            return Response(409, {"error": {"code": "conflict", "message": f'Project "{name}" already exists'}})
        project = self._project(name)
        return Response(
            200,
            {
                "id": project.id,
                "name": name,
                "accountId": "team_fake",
                "directoryListing": False,
                "nodeVersion": "22.x",
                "resourceConfig": {"functionDefaultRegions": ["iad1"]},
                "defaultResourceConfig": {"functionDefaultRegions": ["iad1"]},
            },
        )

    @route("DELETE", r"/v9/projects/(?P<name>[^/]+)")
    def delete_project(self, request: Request) -> Response:
        if denied := self.require_bearer(request):
            return denied
        for name, project in list(self.projects.items()):
            if request.params["name"] in (name, project.id):
                del self.projects[name]
                return Response(204)
        return self.error(404, "Project not found")

    # ----- files and deployments -------------------------------------------------------------------
    @route("POST", r"/v2/files")
    def upload_file(self, request: Request) -> Response:
        if denied := self.require_bearer(request):
            return denied
        digest = request.headers.get("x-vercel-digest", "")
        if hashlib.sha1(request.body).hexdigest() != digest:
            return self.error(400, "x-vercel-digest does not match the SHA-1 of the body")
        self.blobs[digest] = request.body
        return Response(200, {"urls": []})

    @route("GET", r"/v6/deployments")
    def list_deployments(self, request: Request) -> Response:
        if denied := self.require_bearer(request):
            return denied
        return Response(200, {"deployments": [], "pagination": {"count": 0, "next": None, "prev": None}})

    @route("POST", r"/v13/deployments")
    def create_deployment(self, request: Request) -> Response:
        if denied := self.require_bearer(request):
            return denied
        body = request.json() or {}
        refs = body.get("files") or []
        files = {ref["file"]: ref["sha"] for ref in refs}
        missing = sorted({sha for sha in files.values() if sha not in self.blobs})
        if missing:
            error = {"code": "missing_files", "message": "Missing files", "missing": missing}
            return Response(400, {"error": error})
        project = self._project(body["name"])
        deployment = _Deployment(
            f"dpl_{secrets.token_hex(12)}", project.name, files, body.get("target"), _ms(), self.polls_before_ready
        )
        deployment.error, self.fail_next = self.fail_next, None
        self.deployments[deployment.id] = deployment
        project.deployments.append(deployment)
        return Response(200, self._deployment_json(deployment))

    @route("GET", r"/v13/deployments/(?P<id>[^/]+)")
    def get_deployment(self, request: Request) -> Response:
        if denied := self.require_bearer(request):
            return denied
        deployment = self.deployments.get(request.params["id"])
        if deployment is None:
            return self.error(404, "Deployment not found")
        body = self._deployment_json(deployment)
        if deployment.polls_left > 0:
            deployment.polls_left -= 1
        elif not deployment.error and deployment.target == "production" and deployment.project in self.projects:
            self.projects[deployment.project].live = deployment
        return Response(200, body)

    # ----- the sites -------------------------------------------------------------------------------
    @route("GET", r"/_sites/(?P<project>[^/]+)/(?P<path>.*)")
    def serve(self, request: Request) -> Response:
        project = self.projects.get(request.params["project"])
        live = project.live if project else None
        path = request.params["path"] or "index.html"
        if live is None or path not in live.files:
            return Response(404, "not found")
        ctype = mimetypes.guess_type(path)[0] or "application/octet-stream"
        return Response(200, self.blobs[live.files[path]], {"Content-Type": ctype})
