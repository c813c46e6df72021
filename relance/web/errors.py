"""Error handlers: bad input is a clear 4xx with a problem document, never a 500 with a stack trace.

Services raise the project's errors (relance/errors.py); this module maps them to HTTP, once.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc

from relance.errors import (
    BadInput,
    Conflict,
    Forbidden,
    Gone,
    InvalidContent,
    NotFound,
    PolicyViolation,
    RelanceError,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)

log = logging.getLogger(__name__)

# The database is unreachable or restarting (refused, connection closed by a restart or by
# pg_terminate_backend, pool exhausted, SQLite busy): the request did not complete and is safe to
# retry (webhooks are claimed by provider id; a message already kept is replayed by the worker).
# Twilio and Stripe retry a 5xx; a 503 with Retry-After says "shortly", a 500 would say "bug".
DATABASE_UNAVAILABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
)
RETRY_AFTER_SECONDS = "5"


# The one place where the project's errors (relance/errors.py) become HTTP status codes; the
# most specific class in an error's MRO wins.
STATUS: dict[type[RelanceError], int] = {
    RelanceError: 400,
    BadInput: 400,
    InvalidContent: 422,
    UnsupportedMediaType: 415,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
    PolicyViolation: 422,
    TooManyRequests: 429,
    Unavailable: 503,
}
PROBLEM_JSON = "application/problem+json"


def status_for(error: RelanceError) -> int:
    return next(STATUS[cls] for cls in type(error).__mro__ if cls in STATUS)


def problem(status: int, code: str, message: str, **extra: Any) -> dict[str, Any]:
    """An RFC 9457 problem document. `error` and `message` repeat `code` and `detail` under the
    names this API used before problem documents (docs/api.md), so existing clients keep
    working."""
    return {
        "type": f"urn:relance:error:{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": message,
        "code": code,
        "error": code,
        "message": message,
        **extra,
    }


def problem_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content=problem(status, code, message, **extra),
        headers=headers,
        media_type=PROBLEM_JSON,
    )


def headers_for(error: RelanceError) -> dict[str, str]:
    """The headers an error's status calls for, whoever renders it (problem document or page)."""
    if isinstance(error, Unauthorized) and error.challenge:
        return {"WWW-Authenticate": error.challenge}
    if isinstance(error, Unavailable):
        return {"Retry-After": RETRY_AFTER_SECONDS}
    if isinstance(error, TooManyRequests):
        return {"Retry-After": str(max(1, error.retry_after_seconds))}
    return {}


def error_response(error: RelanceError) -> JSONResponse:
    return problem_response(
        status_for(error), error.code, error.message, headers_for(error) or None, **error.details
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RelanceError)
    async def _relance_error(_request: Request, exc: RelanceError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in err.get("loc", ())), "message": err.get("msg")}
            for err in exc.errors()
        ]
        return problem_response(422, "invalid_request", "Invalid request", details=errors)

    @app.exception_handler(UnicodeDecodeError)
    async def _bad_encoding(_request: Request, _exc: UnicodeDecodeError) -> JSONResponse:
        return problem_response(400, "bad_encoding", "Body is not UTF-8")

    async def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        log.warning("database unavailable, answering 503: %s", first_line[:300])
        return problem_response(
            503,
            "database_unavailable",
            "The service is briefly unavailable; retry shortly",
            {"Retry-After": RETRY_AFTER_SECONDS},
        )

    for error in DATABASE_UNAVAILABLE:
        app.add_exception_handler(error, _database_unavailable)
