"""Webhook signing secrets encrypted at rest (issue 22).

The worker needs each endpoint's secret in clear to sign deliveries, so it cannot be hashed; it
is stored as a Fernet token (AES-128-CBC + HMAC-SHA256, authenticated) under a key derived from
`SECRET_KEY` with HKDF, in a context of its own so the key serves nothing else. A database dump
or backup alone no longer gives the secrets away. Changing `SECRET_KEY` makes the stored secrets
unreadable: deliveries then fail with a clear error until each secret is rotated in the console.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

CONTEXT = b"relance/outbox/webhook-secret/v1"


class SecretUnreadable(ValueError):
    """The stored secret was not encrypted under the current SECRET_KEY (or was altered)."""


def _fernet(app_secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=CONTEXT).derive(
        app_secret.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret: str, app_secret: str) -> str:
    return _fernet(app_secret).encrypt(secret.encode()).decode("ascii")


def unseal(token: str, app_secret: str) -> str:
    try:
        return _fernet(app_secret).decrypt(token.encode("ascii")).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "the webhook secret cannot be decrypted (SECRET_KEY changed?): rotate it"
        ) from None
