"""One-click unsubscribe (RFC 8058): a signed link per e-mail contact, honoured at once.

The token names the contact and a digest of its address, signed with SECRET_KEY (itsdangerous):
it cannot be forged to opt someone else out, and it stops working if the contact's address is
changed. It never expires — an unsubscribe link must work however old the e-mail. The opt-out is
for e-mail only (`relance.contacts.service.opt_out` on the e-mail contact row): SMS, calls and
letters carry on, as the issue asks.
"""

from __future__ import annotations

import hashlib
from typing import Any

from itsdangerous import BadSignature, Serializer, URLSafeSerializer
from itsdangerous.encoding import base64_encode
from sqlalchemy.orm import Session

from relance.contacts import service as contacts
from relance.db.models import Contact
from relance.db.models.enums import Channel
from relance.errors import Forbidden
from relance.settings import Settings

SALT = "mail-unsubscribe"


class _Uncompressed(URLSafeSerializer):
    """itsdangerous' URL-safe tokens, never zlib-compressed: the payload (an id and a 16-hex
    digest) is never shorter compressed, so the tokens are the very ones `URLSafeSerializer`
    makes, and it reads them (and any compressed one) back. The attempt is skipped because it
    is not free: `zlib.compress` sets up a ~256 KiB deflate state per call, 50–180 µs per
    e-mail in the dispatcher's batches (issue 19's profile), a tenth of an e-mail's cost."""

    def dump_payload(self, obj: Any) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))


def _serializer(settings: Settings) -> URLSafeSerializer:
    return _Uncompressed(settings.secret_key, salt=SALT)


def _digest(address: str) -> str:
    return hashlib.sha256(address.encode()).hexdigest()[:16]


def token_for(contact: Contact, settings: Settings) -> str:
    return str(_serializer(settings).dumps([contact.id, _digest(contact.address)]))


def url_for(contact: Contact, settings: Settings) -> str:
    return f"{settings.public_base_url.rstrip('/')}/mail/unsubscribe/{token_for(contact, settings)}"


def contact_of(session: Session, token: str, settings: Settings) -> Contact:
    """The e-mail contact a token names; Forbidden for a forged, altered or stale token."""
    try:
        contact_id, digest = _serializer(settings).loads(token)
    except (BadSignature, ValueError, TypeError) as exc:
        raise Forbidden("invalid_unsubscribe_token", "this unsubscribe link is not valid") from exc
    contact = session.get(Contact, int(contact_id)) if isinstance(contact_id, int) else None
    if contact is None or contact.channel != Channel.EMAIL or _digest(contact.address) != digest:
        raise Forbidden("invalid_unsubscribe_token", "this unsubscribe link is not valid")
    return contact


def unsubscribe(session: Session, token: str, settings: Settings, *, source: str) -> Contact:
    """Opt the contact out of e-mail (audited by `opt_out`); a repeat click changes nothing."""
    contact = contact_of(session, token, settings)
    contacts.opt_out(session, contact, source=source, keyword="list-unsubscribe")
    return contact
