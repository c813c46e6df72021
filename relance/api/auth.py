"""Bearer-token authentication for /api/v1.

Tokens are created with `relance token create NAME`; only their SHA-256 is stored
(`relance.auth.tokens`). A missing, unknown or revoked token is a 401 with a `WWW-Authenticate`
challenge, so clients can tell "log in again" from "not allowed". A read-only token
(`--read-only`) gets 403 on anything but GET/HEAD, before the route runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from relance.auth.tokens import verify_token
from relance.errors import Forbidden, Unauthorized
from relance.web.deps import DbSession

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="ApiToken",
    description="API token printed once by `relance token create NAME`.",
)


def _unauthorized(code: str, message: str, error: str | None = None) -> Unauthorized:
    challenge = 'Bearer realm="relance"'
    if error:
        challenge += f', error="{error}"'
    return Unauthorized(code, message, challenge=challenge)


@dataclass(frozen=True)
class ApiCaller:
    """Who is calling: the token row's id and name. Writes are audited as `api:<name>`."""

    token_id: int
    name: str

    @property
    def actor(self) -> str:
        return f"api:{self.name}"[:80]


READ_METHODS = frozenset({"GET", "HEAD"})


def require_token(
    request: Request,
    db: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> ApiCaller:
    if credentials is None or not credentials.credentials:
        raise _unauthorized("missing_token", "An API token is required (Authorization: Bearer ...)")
    row = verify_token(db, credentials.credentials)
    if row is None:
        raise _unauthorized(
            "invalid_token", "The API token is unknown, revoked or expired", "invalid_token"
        )
    if row.read_only and request.method not in READ_METHODS:
        raise Forbidden(
            "read_only_token", "This API token is read-only: it may not change anything"
        )
    return ApiCaller(token_id=row.id, name=row.name)


Caller = Annotated[ApiCaller, Depends(require_token)]
