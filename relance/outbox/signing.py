"""Webhook signatures, in Stripe's scheme: `Relance-Signature: t=<unix time>,v1=<hex>` where the
hex is HMAC-SHA256(secret, "<t>.<raw body>").

Signing the timestamp with the body lets a receiver refuse a replayed delivery (older than its
tolerance) as well as a forged one; the comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

HEADER = "Relance-Signature"
TOLERANCE_SECONDS = 300


class SignatureError(ValueError):
    """A webhook body whose signature does not verify.

    Not a RelanceError: `verify` is the reference check a *receiver* of our outbound webhooks
    runs (and our tests); no Relance endpoint raises it, so it never reaches the api's handler."""


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> int:
    """What a receiver runs: the signed timestamp, or SignatureError."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        raise SignatureError("no timestamp in the signature header") from None
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    given = [v for k, v in (p.split("=", 1) for p in header.split(",") if "=" in p) if k == "v1"]
    if not any(hmac.compare_digest(expected, g) for g in given):
        raise SignatureError("signature does not match")
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise SignatureError("timestamp outside the tolerance")
    return timestamp
