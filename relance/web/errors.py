"""Error handlers: bad input is a clear 4xx with a JSON body, never a 500 with a stack trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc

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


class DomainError(Exception):
    """A rule said no. Mapped to 4xx with a machine-readable code and a human message."""

    status_code = 400
    headers: dict[str, str] | None = None  # e.g. WWW-Authenticate on a 401

    def __init__(self, code: str, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class NotFound(DomainError):
    status_code = 404


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code,
            content={"error": exc.code, "message": exc.message},
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in err.get("loc", ())), "message": err.get("msg")}
            for err in exc.errors()
        ]
        return JSONResponse(
            status_code=422,
            content={"error": "invalid_request", "message": "Invalid request", "details": errors},
        )

    @app.exception_handler(UnicodeDecodeError)
    async def _bad_encoding(_request: Request, _exc: UnicodeDecodeError) -> JSONResponse:
        return JSONResponse(
            status_code=400, content={"error": "bad_encoding", "message": "Body is not UTF-8"}
        )

    async def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        log.warning("database unavailable, answering 503: %s", first_line[:300])
        return JSONResponse(
            status_code=503,
            content={
                "error": "database_unavailable",
                "message": "The service is briefly unavailable; retry shortly",
            },
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )

    for error in DATABASE_UNAVAILABLE:
        app.add_exception_handler(error, _database_unavailable)
