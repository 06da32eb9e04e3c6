"""Links shown to users: status URLs and the Prefect UI."""

from __future__ import annotations

import os
from urllib.parse import quote

from starlette.requests import Request

_SLOT = "__project_id__"  # stands for the id in the cached path of GET /api/projects/{project_id}


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
    """URL of ``GET /api/projects/{project_id}``, never built from the request's ``Host`` header.

    Absolute on the configured public URL (``POMBOLT_API_PUBLIC_URL``, which includes any path prefix a proxy
    adds), else relative to the server's own root path (``/api/projects/...``, resolved by the client against
    the URL it called). A ``Host`` (or ``X-Forwarded-Host``) header is the client's to choose: reflected, a
    forged one would point the link, and the Bearer key a client sends with it, at the attacker's server
    (and a shared cache could keep that answer for others).

    The route's path is worked out once per app (``url_for`` walks every route on each call).
    """
    app_state = request.app.state
    template: str | None = getattr(app_state, "status_path_template", None)
    if template is None:
        template = app_state.status_path_template = str(request.app.url_path_for("get_project", project_id=_SLOT))
    public: str | None = app_state.pombolt.api.public_url
    if public:
        base = public.rstrip("/")
    else:  # the root path is the server's setting (uvicorn --root-path), not a request header
        base = str(request.scope.get("app_root_path", request.scope.get("root_path", ""))).rstrip("/")
    return base + template.replace(_SLOT, quote(project_id, safe=""))
