"""Dependencies shared by the routers, as ``Annotated`` aliases (``StoreDep``, ``CurrentTenant``, ...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import RateLimitItem
from limits.aio.strategies import MovingWindowRateLimiter

from api.config import ApiSettings
from core.models import Tenant
from core.settings import Settings
from core.store import Store


@dataclass
class AppState:
    """Everything a request handler needs, built once per app."""

    store: Store
    settings: Settings
    api: ApiSettings
    limiter: MovingWindowRateLimiter
    limit: RateLimitItem
    wake: list[object] = field(default_factory=list)

    def notify_dispatcher(self) -> None:
        """Wake an in-process dispatcher (no-op when it runs elsewhere)."""
        for dispatcher in self.wake:
            dispatcher.notify()  # type: ignore[attr-defined]


async def _state(request: Request) -> AppState:  # async: no thread hop for a lookup
    state: AppState = request.app.state.pombolt
    return state


StateDep = Annotated[AppState, Depends(_state)]


async def _store(state: StateDep) -> Store:
    return state.store


StoreDep = Annotated[Store, Depends(_store)]

_bearer = HTTPBearer(auto_error=False, description="A tenant API key from 'pombolt keys create'.")


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": "Bearer"})


def current_tenant(store: StoreDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Tenant:
    """The tenant owning the request's Bearer key.

    Raises:
        HTTPException: 401 when the key is missing, unknown or revoked.
    """
    if creds is None or not creds.credentials:
        raise _unauthorized("missing API key; send 'Authorization: Bearer <key>' (create one: pombolt keys create)")
    tenant = store.tenant_for_key(creds.credentials)
    if tenant is None:
        raise _unauthorized("API key is unknown or revoked; create a new one with 'pombolt keys create'")
    return tenant


CurrentTenant = Annotated[Tenant, Depends(current_tenant)]
