"""``GET /healthz`` (database and Prefect reachability, separately) and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import StateDep
from api.schemas import HealthOut

router = APIRouter(tags=["health"])


def prefect_reachable() -> str:
    """``ok``, or why Prefect's API did not answer."""
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:  # without it Prefect would start a throwaway server in-process
        return "not configured: set PREFECT_API_URL (pombolt serve does)"
    try:
        with get_client(sync_client=True, httpx_settings={"timeout": 3.0}) as client:
            problem = client.api_healthcheck()
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"
    return "ok" if problem is None else f"unreachable: {type(problem).__name__}"


@router.get("/healthz", response_model=HealthOut)
def healthz(state: StateDep, response: Response) -> HealthOut:
    """Whether the state store and Prefect answer; 503 when the database does not (the API cannot accept)."""
    try:
        state.store.ping()
        database = "ok"
    except Exception as exc:
        database = f"unreachable: {type(exc).__name__}"
    prefect = prefect_reachable()
    if database != "ok":
        response.status_code = 503
    overall = "ok" if database == "ok" and prefect == "ok" else "degraded"
    return HealthOut(status=overall, database=database, prefect=prefect)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus text: requests, runs by status, phase durations, outbox depth."""
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
