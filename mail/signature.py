"""Authentication of `POST /mail/inbound`: HMAC-SHA256 of the raw message with a shared secret.

The MTA pipe or the provider's inbound-parse hook signs the exact bytes it posts:
`X-Relance-Signature: sha256=<hex of HMAC-SHA256(MAIL_INBOUND_SECRET, body)>`. A missing header is
401, a wrong one 403, both before the message is parsed or stored. A replayed genuine request
changes nothing: the message is claimed by its Message-ID.
"""

from __future__ import annotations

import hashlib
import hmac

from relance.errors import Forbidden, Unauthorized

HEADER = "X-Relance-Signature"
PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> None:
    if not header:
        raise Unauthorized("missing_signature", f"{HEADER} is required", challenge="HMAC-SHA256")
    if not hmac.compare_digest(sign(secret, body).encode(), header.strip().encode()):
        raise Forbidden("invalid_signature", f"{HEADER} does not match the message")
