"""The Pom-Bolt API: ``create_app()`` builds the FastAPI app (routers, limits, metrics, status page).

Run it with ``uvicorn api.app:create_app --factory`` (``pombolt serve`` does).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from prometheus_client import Counter
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import AppState
from api.errors import install_error_handlers
from api.metrics import make_registry
from core.runtime import configure_prefect_env, get_store
from core.settings import ApiSettings, Settings, get_settings
from core.store import Store

PAGE_DIR = Path(__file__).parent / "page"


class BodySizeLimit:
    """Answer ``413`` to bodies over ``max_bytes`` (by Content-Length, or counted while streaming)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        if length is not None:
            await self.app(scope, receive, send)  # the server holds the client to its Content-Length
            return
        # chunked: read up to the cap first, then replay what was read
        messages: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            messages.append(message)
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                await self._reject(scope, receive, send)
                return
            if message["type"] != "http.request" or not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body is over {self.max_bytes} bytes; send less (POMBOLT_API_MAX_BODY_BYTES)"},
            status_code=413,
        )
        await response(scope, receive, send)


class RequestCounter:
    """Count requests by method, route template and status (a plain ASGI middleware: no per-request task)."""

    def __init__(self, app: ASGIApp, counter: Counter) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.counter.labels(scope["method"], route, str(status)).inc()


def _db_pool(api: ApiSettings, store: Store) -> ThreadPoolExecutor:
    threads = api.db_threads or (1 if store.engine.dialect.name == "sqlite" else 8)
    return ThreadPoolExecutor(threads, thread_name_prefix="pombolt-db")


def create_app(settings: Settings | None = None, api: ApiSettings | None = None) -> FastAPI:
    """Build the API app on the state store of ``settings``.

    Args:
        settings: Pom-Bolt settings (default: from the environment).
        api: API settings (default: from ``POMBOLT_API_*``).
    """
    settings = settings or get_settings()
    api = api or ApiSettings()
    configure_prefect_env(settings)
    state = _app_state(get_store(settings), settings, api)
    app = FastAPI(
        title="Pom-Bolt API",
        version="1",
        description="Requirements in, a live web app out. Every /api route needs 'Authorization: Bearer <key>'.",
        lifespan=_lifespan(state),
    )
    app.state.pombolt = state
    registry, requests = make_registry(state.store)
    app.state.registry = registry

    from api.routes import blocks, health, projects, requirements, usage

    for module in (requirements, projects, blocks, health, usage):
        app.include_router(module.router)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=api.max_body_bytes)
    app.add_middleware(RequestCounter, counter=requests)
    app.mount("/", StaticFiles(directory=PAGE_DIR, html=True), name="page")
    return app


def _app_state(store: Store, settings: Settings, api: ApiSettings) -> AppState:
    return AppState(
        store=store,
        settings=settings,
        api=api,
        # the asyncio flavour, checked on the event loop (the sync MemoryStorage starts a threading.Timer for
        # its expiry on nearly every hit); a sliding-window COUNTER, not a moving window: the moving window
        # keeps one entry per hit and trims them in a worker thread after every hit (a thread hop per request)
        limiter=SlidingWindowCounterRateLimiter(MemoryStorage()),
        limit=parse(api.rate_limit),
        db=_db_pool(api, store),
    )


def _lifespan(state: AppState) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """What runs around the app's life: WAL checkpoints, the frozen startup heap, an in-process dispatcher."""
    store, api = state.store, state.api

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop_checkpoints = store.checkpoint_in_background()
        # the startup heap (Prefect, SQLAlchemy, pydantic: ~170k objects) is never garbage: keep full
        # collections from walking it (about 100 ms each, a stall for every request in flight)
        gc.collect()
        gc.freeze()
        dispatcher = None
        if api.dispatcher:
            from usecases.dispatch import Dispatcher

            dispatcher = Dispatcher(store, deployment=api.deployment, poll_seconds=api.dispatch_poll_seconds)
            state.wake.append(dispatcher)
            dispatcher.start()
        try:
            yield
        finally:
            if dispatcher is not None:
                dispatcher.stop()
                state.wake.remove(dispatcher)
            stop_checkpoints()
            state.db.shutdown(wait=True)  # submissions in flight are written before the process goes on
            state.db = _db_pool(api, store)  # for a later lifespan of this app (threads start only when used)

    return lifespan
