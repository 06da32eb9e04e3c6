"""The Pom-Bolt API: ``create_app()`` builds the FastAPI app (routers, limits, metrics, status page).

Run it with ``uvicorn api.app:create_app --factory`` (``pombolt serve`` does).
"""

from __future__ import annotations

import base64
import gc
import hashlib
import re
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
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

_LOCKED = "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
#: The status page (api/page): its own script and stylesheet, fetch() to this origin, nothing else (no inline
#: script or style, no images, fonts, frames or plugins; its forms are sent by script, never navigated).
PAGE_CSP = f"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; {_LOCKED}"
#: Every other answer (JSON, the page's own script and stylesheet, errors): nothing may load from it.
API_CSP = f"default-src 'none'; {_LOCKED}"
#: /docs: Swagger UI from its CDN, its one inline script by hash (``{hashes}``), and requests to this origin.
DOCS_CSP = (
    "default-src 'none'; script-src https://cdn.jsdelivr.net {hashes}; "
    "style-src https://cdn.jsdelivr.net 'unsafe-inline'; img-src https://fastapi.tiangolo.com data:; "
    f"connect-src 'self'; {_LOCKED}"
)
SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
_HEADERS = {  # what SecurityHeaders adds to an HTML answer (True) and to any other (False), ready to send
    html: [(k.encode(), v.encode()) for k, v in {"content-security-policy": csp, **SECURITY_HEADERS}.items()]
    for html, csp in ((True, PAGE_CSP), (False, API_CSP))
}


class SecurityHeaders:
    """Add ``Content-Security-Policy``, ``X-Frame-Options``, ``X-Content-Type-Options`` and ``Referrer-Policy``
    to every answer that lacks them: :data:`PAGE_CSP` on HTML, :data:`API_CSP` on anything else (a route may
    set a policy of its own, as /docs does). It wraps the whole app, Starlette's 500 answers included.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                have = {name.lower(): value for name, value in headers}
                html = have.get(b"content-type", b"").startswith(b"text/html")
                headers += [(name, value) for name, value in _HEADERS[html] if name not in have]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)


class PomBoltAPI(FastAPI):
    """FastAPI with :class:`SecurityHeaders` outside everything else, so even a 500 carries the headers."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack())


def _add_docs(app: FastAPI) -> None:
    """``GET /docs``: Swagger UI under :data:`DOCS_CSP`, its inline script allowed by its SHA-256 only."""
    openapi_url = app.openapi_url or "/openapi.json"

    async def docs(request: Request) -> HTMLResponse:
        root_path = str(request.scope.get("root_path", "")).rstrip("/")  # the server's setting, not a header
        page = get_swagger_ui_html(openapi_url=root_path + openapi_url, title=f"{app.title} - Swagger UI")
        inline = re.findall(rb"<script>(.*?)</script>", bytes(page.body), re.S)
        hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s).digest()).decode()}'" for s in inline)
        page.headers["Content-Security-Policy"] = DOCS_CSP.format(hashes=hashes)
        return page

    app.add_route("/docs", docs, include_in_schema=False)


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
    app = PomBoltAPI(
        title="Pom-Bolt API",
        version="1",
        description="Requirements in, a live web app out. Every /api route needs 'Authorization: Bearer <key>'.",
        lifespan=_lifespan(state),
        docs_url=None,  # served by _add_docs, under a policy of its own
        redoc_url=None,
    )
    app.state.pombolt = state
    registry, requests = make_registry(state.store)
    app.state.registry = registry

    from api.routes import blocks, health, projects, requirements, usage

    for module in (requirements, projects, blocks, health, usage):
        app.include_router(module.router)
    _add_docs(app)
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
