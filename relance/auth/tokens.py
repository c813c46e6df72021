"""Bearer tokens for the JSON API. Only the SHA-256 of a token is stored; the token itself is
shown once, at creation."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance import audit
from relance.db.base import utcnow
from relance.db.models import ApiToken, User

TOKEN_PREFIX = "rlc_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    session: Session,
    name: str,
    *,
    user: User | None = None,
    read_only: bool = False,
    actor: str = "system",
) -> tuple[ApiToken, str]:
    """Create a token; returns the row and the plaintext (never stored, show it once)."""
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        name=name[:80],
        token_hash=hash_token(plaintext),
        user_id=user.id if user else None,
        read_only=read_only,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="api_token.created",
        entity=row,
        name=row.name,
        read_only=read_only,
    )
    return row, plaintext


def verify_token(session: Session, token: str | None) -> ApiToken | None:
    """The live token row for this bearer token, or None (unknown, revoked, or malformed)."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = hash_token(token)
    row = session.scalars(select(ApiToken).where(ApiToken.token_hash == digest)).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.token_hash, digest):
        return None
    if row.user_id is not None:
        user = session.get(User, row.user_id)
        if user is None or not user.active:
            return None
    return row


def revoke_token(session: Session, token_id: int, *, actor: str = "system") -> bool:
    row = session.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    audit.record(session, actor=actor, action="api_token.revoked", entity=row, name=row.name)
    return True
