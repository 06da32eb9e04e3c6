"""Dependencies shared by the routers, as ``Annotated`` aliases (``StoreDep``, ``CurrentTenant``, ...)."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import ipaddress
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Annotated, TypeVar

from cachetools import LRUCache
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import RateLimitItem, parse
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from starlette.concurrency import run_in_threadpool

from core.models import Tenant
from core.settings import ApiSettings, Settings
from core.store import KEY_NOT_LIVE, Store, hash_key

T = TypeVar("T")

#: Failed authentications (unknown or revoked keys) allowed per client address, in ``limits`` notation: past
#: it, a key that has not authenticated before gets ``429`` before it is looked up.
AUTH_FAILURE_LIMIT = "10/minute"


@dataclass
class AppState:
    """Everything a request handler needs, built once per app."""

    store: Store
    settings: Settings
    api: ApiSettings
    limiter: SlidingWindowCounterRateLimiter
    limit: RateLimitItem
    db: ThreadPoolExecutor  # the thread(s) the submission path runs its state-store calls on (ApiSettings.db_threads)
    wake: list[object] = field(default_factory=list)
    # API key hash -> its tenant id. A key never changes tenant, so this is safe to keep; whether the key is
    # still live (not revoked) is NOT cached: every request checks that in the database.
    key_tenants: LRUCache[str, str] = field(default_factory=lambda: LRUCache(maxsize=10_000))
    auth_failures: RateLimitItem = field(default_factory=lambda: parse(AUTH_FAILURE_LIMIT))

    async def in_db_thread(self, fn: Callable[..., T], /, *args: object) -> T:
        """Run a blocking state-store call on the API's database thread(s), in a copy of the current context
        (request id included).

        One plain executor hop, about half the event-loop work of ``starlette.concurrency.run_in_threadpool``
        (anyio's cancel scope and capacity limiter), on a small pool of its own: on SQLite, whose writers
        take turns anyway, one thread serves submissions in arrival order, where a pool of threads queued
        on the write lock (an unfair lock) and fought the event loop for the GIL: p50 at 50 concurrent
        clients went from ~120 to ~90 ms and the p99 from ~200 to ~120 ms.
        """
        call = functools.partial(contextvars.copy_context().run, fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self.db, call)

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


async def bearer_key(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    """The request's Bearer key, not yet checked (async: no thread hop).

    Raises:
        HTTPException: 401 when there is none.
    """
    if creds is None or not creds.credentials:
        raise unauthorized("missing API key; send 'Authorization: Bearer <key>' (create one: pombolt keys create)")
    return creds.credentials


BearerKey = Annotated[str, Depends(bearer_key)]


def unauthorized(message: str = KEY_NOT_LIVE) -> HTTPException:
    """A ``401`` asking for a Bearer key."""
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": "Bearer"})


def client_address(request: Request) -> str:
    """Who failed authentications are counted against: the client's address as the server saw it.

    Never a header the client writes itself (``X-Forwarded-For``): behind a proxy, run uvicorn with
    ``--proxy-headers --forwarded-allow-ips <the proxy>`` and the server puts the real client here. IPv6
    clients count by their /64, the block one host is usually given, so that rotating addresses within it
    buys no extra guesses.
    """
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def retry_after(reset_time: float) -> int:
    """Whole seconds until a limit's window frees a slot (at least 1), for ``Retry-After``."""
    return max(1, int(reset_time - time.time()) + 1)


async def refuse_guessing(state: AppState, address: str, key_hash: str) -> None:
    """``429`` when ``address`` has used up its failed authentications, before the key is looked up.

    A key that authenticated before (its hash is in ``state.key_tenants``) is no guess and passes: a client
    sharing an address (a NAT, a proxy) with someone guessing keys keeps working.

    Raises:
        HTTPException: 429 with ``Retry-After``.
    """
    if key_hash in state.key_tenants or await state.limiter.test(state.auth_failures, "auth-failures", address):
        return
    stats = await state.limiter.get_window_stats(state.auth_failures, "auth-failures", address)
    wait = retry_after(stats.reset_time)
    raise HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        detail=f"too many failed authentications from this address (limit {state.auth_failures}); "
        f"wait {wait}s and send a valid key",
        headers={"Retry-After": str(wait)},
    )


async def count_failure(state: AppState, address: str, key_hash: str) -> None:
    """Count one failed authentication against ``address`` (and forget the key's tenant: it is not live)."""
    state.key_tenants.pop(key_hash, None)
    await state.limiter.hit(state.auth_failures, "auth-failures", address)


async def current_tenant(state: StateDep, key: BearerKey, request: Request) -> Tenant:
    """The tenant owning the request's Bearer key (read from the database on every request).

    Failed authentications are limited per client address (:data:`AUTH_FAILURE_LIMIT`), checked before the
    key is looked up.

    Raises:
        HTTPException: 401 when the key is missing, unknown or revoked; 429 past the failure limit.
    """
    key_hash, address = hash_key(key), client_address(request)
    await refuse_guessing(state, address, key_hash)
    tenant = await run_in_threadpool(state.store.tenant_for_key, key)
    if tenant is None:
        await count_failure(state, address, key_hash)
        raise unauthorized()
    state.key_tenants[key_hash] = tenant.id
    return tenant


CurrentTenant = Annotated[Tenant, Depends(current_tenant)]
