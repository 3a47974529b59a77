"""The one place that turns exceptions into HTTP answers: `{"detail", "code"}`, 4xx for client
faults, 503 with Retry-After for outages, and never a traceback."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import cast

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import HTTPExceptionHandler

from api.settings import settings
from vision.errors import ScanError

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "image_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "unavailable",
}


class ErrorPublic(BaseModel):
    """Every error body: a sentence for people and a stable code for programs."""

    detail: str
    code: str


def error_responses(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI entries for the error answers a route can give."""
    return {s: {"model": ErrorPublic, "description": HTTPStatus(s).phrase} for s in statuses}


def _body(status: int, detail: str, code: str, headers: dict | None = None) -> JSONResponse:
    if status == 503:
        headers = {**(headers or {}), "Retry-After": str(settings.retry_after_s)}
    return JSONResponse({"detail": detail, "code": code}, status_code=status, headers=headers)


async def _scan_error(_: Request, exc: ScanError) -> JSONResponse:
    return _body(exc.status_code, exc.detail, exc.code)


async def _database_error(_: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable: %s", exc)
    return _body(503, "the database is unavailable; try again shortly", "database_unavailable")


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    return _body(exc.status_code, detail, code, headers=getattr(exc, "headers", None))


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return _body(422, "; ".join(parts) or "invalid request", "invalid_request")


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled %s", type(exc).__name__, exc_info=exc)
    return _body(500, "internal server error", "internal_error")


def install_error_handlers(app: FastAPI) -> None:
    # Starlette types every handler as taking Exception; it calls each only with its own class.
    app.add_exception_handler(ScanError, cast(HTTPExceptionHandler, _scan_error))
    app.add_exception_handler(psycopg.OperationalError, _database_error)
    app.add_exception_handler(PoolTimeout, _database_error)
    app.add_exception_handler(StarletteHTTPException, cast(HTTPExceptionHandler, _http_error))
    app.add_exception_handler(RequestValidationError, cast(HTTPExceptionHandler, _validation_error))
    app.add_exception_handler(Exception, _unexpected)
