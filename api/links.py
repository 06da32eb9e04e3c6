"""Links shown to users: status URLs and the Prefect UI."""

from __future__ import annotations

import os
from urllib.parse import quote

from cachetools import LRUCache
from starlette.requests import Request

_SLOT = "__project_id__"  # stands for the id in the cached path of GET /api/projects/{project_id}
_BASES: LRUCache[tuple[object, ...], str] = LRUCache(maxsize=256)  # request origin -> base URL (see status_url)


def prefect_ui_base(configured: str | None) -> str | None:
    """The Prefect UI base URL: configured, else Prefect's own setting, else derived from PREFECT_API_URL."""
    if configured:
        return configured.rstrip("/")
    try:
        from prefect.settings import get_current_settings

        ui = get_current_settings().ui_url
    except Exception:
        ui = None
    if ui:
        return str(ui).rstrip("/")
    api = os.environ.get("PREFECT_API_URL", "")
    return api[: -len("/api")] if api.endswith("/api") else None


def flow_run_url(base: str | None, flow_run_id: str | None) -> str | None:
    """Link to a flow run in the Prefect UI."""
    if not base or not flow_run_id:
        return None
    return f"{base}/runs/flow-run/{flow_run_id}"


def status_url(request: Request, project_id: str) -> str:
    """Absolute URL of ``GET /api/projects/{project_id}`` for this request's host and root path.

    The same as ``request.url_for("get_project", ...)``, cheaper: ``url_for`` walks every route (raising and
    catching a ``NoMatchFound`` on each) and parses a new base URL on every call, a measurable share of
    ``POST /api/requirements``. Here the route's path is worked out once per app and the base URL once per
    (scheme, server, root path, Host header), in a small bounded cache.
    """
    app_state = request.app.state
    template: str | None = getattr(app_state, "status_path_template", None)
    if template is None:
        template = app_state.status_path_template = str(request.app.url_path_for("get_project", project_id=_SLOT))
    scope = request.scope
    host = next((value for name, value in scope["headers"] if name == b"host"), None)
    server = scope.get("server")
    where = (
        scope.get("scheme"),
        tuple(server) if server else None,  # a list under some servers and test clients
        scope.get("app_root_path", scope.get("root_path")),
        host,
    )
    base = _BASES.get(where)
    if base is None:
        base = _BASES[where] = str(request.base_url).rstrip("/")
    return base + template.replace(_SLOT, quote(project_id, safe=""))
