"""How the API answers errors.

One handler answers every :class:`~core.errors.PomBoltError` a route lets through, with the status from
:data:`core.errors.HTTP_STATUS` and a body of ``detail`` (the message; a field-level list when the error names
the field at fault), ``code`` and ``retryable``. Routes do not map errors to statuses themselves. Request
validation errors are answered without echoing the input.
"""

from __future__ import annotations

import json

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from core.errors import PomBoltError, http_status


def error_response(exc: PomBoltError) -> JSONResponse:
    """The answer to ``exc``: its status from the table, its message, code and retry flag."""
    status = http_status(exc)
    detail: object = exc.message
    if exc.field is not None and status == 422:  # in the shape of FastAPI's own validation errors
        detail = [{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error"}]
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    body = {"detail": detail, "code": exc.code, "retryable": exc.retryable}
    return JSONResponse(body, status_code=status, headers=headers)


async def pombolt_error(_request: Request, exc: Exception) -> Response:
    """The exception handler for :class:`PomBoltError` (async: no thread hop)."""
    assert isinstance(exc, PomBoltError)  # registered for PomBoltError only
    return error_response(exc)


def _printable(part: object) -> str | int:
    """A location part safe to send as UTF-8 JSON (a lone surrogate becomes its escape, as text)."""
    return part if isinstance(part, int) else str(part).encode("utf-8", "backslashreplace").decode("utf-8")


async def invalid_request(_request: Request, exc: Exception) -> Response:
    """422 for a request that does not fit its schema; never echoes the input (it may hold a secret, a lone
    surrogate or a non-finite number JSON cannot carry)."""
    assert isinstance(exc, RequestValidationError)
    detail = [{"loc": [_printable(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    return Response(json.dumps({"detail": detail}), status_code=422, media_type="application/json")


def install_error_handlers(app: FastAPI) -> None:
    """Register the API's error handlers on ``app``."""
    app.add_exception_handler(PomBoltError, pombolt_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
