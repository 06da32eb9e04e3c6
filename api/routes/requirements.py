"""``POST /api/requirements``: accept a submission into the outbox and answer at once."""

from __future__ import annotations

import logging
import re
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Request, Response, status

from api.deps import (
    AppState,
    BearerKey,
    StateDep,
    client_address,
    count_failure,
    refuse_guessing,
    retry_after,
    unauthorized,
)
from api.links import status_url
from api.schemas import Accepted
from blocks.catalog import Kind, shorthand_names
from core.errors import KeyNotLive, UnknownBlock
from core.models import Project, Run
from core.store import hash_key
from usecases.submit import Submission, submit_idempotent

router = APIRouter(prefix="/api", tags=["requirements"])
log = logging.getLogger("pombolt.api")
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # what we accept from X-Request-Id (it goes into headers and logs)


def _check_refs(state: AppState, tenant_id: str, api_key_hash: str, body: Submission) -> None:
    """A run may reference only built-ins and Blocks its own tenant saved.

    Raises:
        KeyNotLive: Before any Block of the tenant is looked up, when the key is no longer live.
        UnknownBlock: A reference names no built-in and no Block of the tenant's (naming the field).
    """
    kinds: dict[Kind, str | None] = {"generator": body.generator, "repository": body.repository, "target": body.target}
    custom = {kind: ref for kind, ref in kinds.items() if ref is not None and ref not in shorthand_names(kind)}
    if custom:  # a revoked key learns nothing of the tenant's Blocks (the submission's own read checks it too)
        state.store.check_key_live(tenant_id, api_key_hash)
    for kind, ref in custom.items():
        if state.store.find_block(tenant_id, ref) is None:
            raise UnknownBlock(
                f"no {kind} Block named {ref!r}; save one with PUT /api/blocks/SLUG/{ref} or use a built-in: "
                + ", ".join(shorthand_names(kind)),
                field=kind,
            )


@router.post("/requirements", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
async def post_requirements(
    body: Submission,
    api_key: BearerKey,
    state: StateDep,
    request: Request,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    x_request_id: Annotated[str | None, Header(max_length=128)] = None,
) -> Accepted:
    """Queue a run that turns the requirements into a live app; poll ``status_url`` for progress.

    The run's request id is the ``X-Request-Id`` sent (letters, digits, ``._:-``; up to 128), or a new one;
    it is answered in ``X-Request-Id`` and follows the run into its flow run, tasks, logs and outgoing calls.
    """
    # The hot path makes ONE worker-thread hop (the state store is synchronous): the key's liveness is checked
    # in the same read as the submission's lookups. The per-tenant rate limit comes first, on the event loop,
    # so it needs the key's tenant before that hop: a key never changes tenant, so that fact is cached after
    # the key's first request (which authenticates in a hop of its own); a revoked key drops out of the cache
    # at its first refused request, so it cannot use up its former tenant's limit.
    key_hash = hash_key(api_key)
    tenant_id = state.key_tenants.get(key_hash)
    if tenant_id is None:  # failed authentications are limited per client address, before the key is looked up
        address = client_address(request)
        await refuse_guessing(state, address, key_hash)
        tenant = await state.in_db_thread(state.store.tenant_for_key, api_key)
        if tenant is None:
            await count_failure(state, address, key_hash)
            raise unauthorized()
        tenant_id = state.key_tenants[key_hash] = tenant.id
    if x_request_id is not None and not REQUEST_ID.fullmatch(x_request_id):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            detail="X-Request-Id may hold only letters, digits and '._:-' (1-128 characters); fix it or omit it",
        )
    await _rate_limit(state, tenant_id)
    try:
        project, run, created = await state.in_db_thread(
            _accept, state, tenant_id, key_hash, body, idempotency_key or None, x_request_id
        )
    except KeyNotLive:
        # revoked: counted as a failure, and its next request authenticates again (and fails)
        await count_failure(state, client_address(request), key_hash)
        raise
    response.headers["X-Request-Id"] = run.request_id
    if created:
        log.info("run %s of project %s queued (request id %s)", run.id, project.id, run.request_id)
        state.notify_dispatcher()
    else:
        response.headers["Idempotent-Replayed"] = "true"
    return Accepted(
        project_id=project.id,
        run_id=run.id,
        status=run.status.value,
        status_url=status_url(request, project.id),
    )


def _accept(
    state: AppState,
    tenant_id: str,
    api_key_hash: str,
    body: Submission,
    key: str | None,
    request_id: str | None = None,
) -> tuple[Project, Run, bool]:
    """Check the Block references, then write the submission (runs in a worker thread).

    Raises:
        PomBoltError: What :func:`_check_refs` and :func:`~usecases.submit.submit_idempotent` raise (the
            API's error handler answers it).
    """
    _check_refs(state, tenant_id, api_key_hash, body)
    # the tenant row exists: the request's key belongs to it (checked live in the submission's read)
    return submit_idempotent(
        state.store,
        tenant_id,
        body,
        state.settings,
        key=key,
        request_id=request_id,
        ensure_tenant=False,
        api_key_hash=api_key_hash,
    )


async def _rate_limit(state: AppState, tenant_id: str) -> None:
    if await state.limiter.hit(state.limit, "requirements", tenant_id):
        return
    stats = await state.limiter.get_window_stats(state.limit, "requirements", tenant_id)
    wait = retry_after(stats.reset_time)
    raise HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        detail=f"too many submissions for this tenant (limit {state.limit}); wait {wait}s and send again",
        headers={"Retry-After": str(wait)},
    )
