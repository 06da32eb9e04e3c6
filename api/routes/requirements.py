"""``POST /api/requirements``: accept a submission into the outbox and answer at once."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, Response, status

from api.deps import CurrentTenant, StateDep
from api.schemas import Accepted, RequirementsIn
from blocks.registry import Kind, shorthand_names
from core.errors import ConcurrentUpdate, ConfigError, RequirementsInvalid
from core.service import IdempotencyConflict, Submission, submit_idempotent

router = APIRouter(prefix="/api", tags=["requirements"])


def _field_error(field: str, message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"loc": ["body", field], "msg": message, "type": "value_error"}],
    )


def _check_refs(state: StateDep, tenant_id: str, body: RequirementsIn) -> None:
    """A run may reference only built-ins and Blocks its own tenant saved."""
    kinds: dict[Kind, str | None] = {"generator": body.generator, "repository": body.repository, "target": body.target}
    for kind, ref in kinds.items():
        if ref is None or ref in shorthand_names(kind):
            continue
        if state.store.find_block(tenant_id, ref) is None:
            raise _field_error(
                kind,
                f"no {kind} Block named {ref!r}; save one with PUT /api/blocks/SLUG/{ref} or use a built-in: "
                + ", ".join(shorthand_names(kind)),
            )


@router.post("/requirements", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
def post_requirements(
    body: RequirementsIn,
    tenant: CurrentTenant,
    state: StateDep,
    request: Request,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Accepted:
    """Queue a run that turns the requirements into a live app; poll ``status_url`` for progress."""
    _rate_limit(state, tenant.id)
    _check_refs(state, tenant.id, body)
    sub = Submission(**body.model_dump())
    try:
        project, run, created = submit_idempotent(
            state.store, tenant.id, sub, state.settings, key=idempotency_key or None
        )
    except RequirementsInvalid as exc:
        raise _field_error("requirements", exc.message) from exc
    except IdempotencyConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=exc.message) from exc
    except ConcurrentUpdate as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=exc.message) from exc
    except ConfigError as exc:
        raise _field_error("name", exc.message) from exc
    if created:
        state.notify_dispatcher()
    else:
        response.headers["Idempotent-Replayed"] = "true"
    return Accepted(
        project_id=project.id,
        run_id=run.id,
        status=run.status.value,
        status_url=str(request.url_for("get_project", project_id=project.id)),
    )


def _rate_limit(state: StateDep, tenant_id: str) -> None:
    if state.limiter.hit(state.limit, "requirements", tenant_id):
        return
    stats = state.limiter.get_window_stats(state.limit, "requirements", tenant_id)

    wait = max(1, int(stats.reset_time - time.time()) + 1)
    raise HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        detail=f"too many submissions for this tenant (limit {state.limit}); wait {wait}s and send again",
        headers={"Retry-After": str(wait)},
    )
