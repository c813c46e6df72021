"""Bearer links sent to a debtor (payment links, the self-service portal): one token discipline.

A token is `secrets.token_urlsafe(32)` (256 bits, unguessable) and lives only in the URL we send;
the database keeps its SHA-256, so a leaked table cannot be turned into working links. Lookups
refuse absurdly long tokens before hashing them. Expiry, revocation and the debtor a link is
bound to are the caller's columns; the two link kinds share this module so a change of the rule
(a longer token, another hash) reaches both.
"""

from __future__ import annotations

import hashlib
import secrets

MAX_TOKEN_LENGTH = 128


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def plausible(token: str | None) -> bool:
    """False for a token no link of ours can have (empty, or longer than any we issue)."""
    return bool(token) and len(token or "") <= MAX_TOKEN_LENGTH
