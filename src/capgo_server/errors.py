"""The one error type of the public API and the handlers that render every failure.

Public API errors are ``{"error": code, "message": text, "moreInfo": {...}}`` (spec §1.2).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("capgo_server")

#: ``Retry-After`` of a 503 answered because no database connection was free in time.
BUSY_RETRY_AFTER_SECONDS = 2


class ApiError(Exception):
    """A refusal with an HTTP status, a stable machine code and a human message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        more_info: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.more_info = more_info or {}
        self.headers = headers

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "moreInfo": self.more_info}


def invalid_body(error: Any) -> ApiError:
    """400 ``invalid_body``: the request parsed but does not have the expected shape."""
    return ApiError(400, "invalid_body", "Invalid body", {"error": error})


def _json_safe_validation_errors(errors: Any) -> list[dict[str, Any]]:
    """Pydantic error dicts, reduced to JSON-serialisable fields."""
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in errors
    ]


async def _api_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _validation_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    error = invalid_body(_json_safe_validation_errors(exc.errors()))
    return JSONResponse(error.body(), status_code=error.status)


async def _http_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return JSONResponse({"error": "not_found", "message": "Not found"}, status_code=404)
    if exc.status_code == 405:
        body = {"error": "method_not_allowed", "message": "Method not allowed", "moreInfo": {}}
        return JSONResponse(body, status_code=405, headers=exc.headers)
    body = {"error": "http_error", "message": str(exc.detail), "moreInfo": {}}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


def service_unavailable() -> ApiError:
    """503 ``service_unavailable`` with ``Retry-After``: the server is overloaded right now."""
    return ApiError(
        503,
        "service_unavailable",
        "The server is too busy to answer now; retry later",
        {"retry_after": BUSY_RETRY_AFTER_SECONDS},
        headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
    )


async def _pool_exhausted_handler(request: Request, exc: Exception) -> JSONResponse:
    # Every database connection stayed busy for CAPGO_DB_POOL_TIMEOUT_SECONDS: an overload
    # (or connections stuck on locks), not a bug in this request. Answer at once so the client
    # backs off, instead of a 500 or a longer stall.
    assert isinstance(exc, PoolTimeoutError)
    logger.warning(
        "no database connection free for %s %s: answered 503", request.method, request.url.path
    )
    error = service_unavailable()
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


async def _unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    request_id = request.headers.get("x-request-id") or str(uuid.uuid4())
    logger.exception(
        "unhandled error on %s %s (request %s)",
        request.method,
        request.url.path,
        request_id,
        exc_info=exc,
    )
    body = {"error": "unknown_error", "message": "Unknown error", "moreInfo": {}}
    return JSONResponse(body, status_code=500, headers={"x-request-id": request_id})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(PoolTimeoutError, _pool_exhausted_handler)
    app.add_exception_handler(Exception, _unexpected_error_handler)
