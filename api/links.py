"""Links shown to users: status URLs and the Prefect UI."""

from __future__ import annotations

import os


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
