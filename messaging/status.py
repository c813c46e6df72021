"""Message status callbacks: delivery progress on the Message, failures flagged on the Contact.

Twilio may send callbacks twice or out of order: a status only ever moves forward (a late "sent"
never overwrites "delivered"), and a contact's failure count rises once per failed message.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.contacts import service as contacts
from relance.conversations import repository
from relance.db.models import Contact, Message
from relance.db.models.enums import MessageStatus
from twilio_edge import claims
from twilio_edge.forms import MessageStatusCallback
from twilio_edge.statuses import FAILED, MESSAGE_STATUS, should_advance

log = logging.getLogger(__name__)


def handle_status_callback(session: Session, callback: MessageStatusCallback) -> None:
    """Claim (sid, status) so a repeated callback is a no-op, then move the status forward."""
    sid, raw_status = callback.sid, callback.status
    claimed = claims.claim(
        session, f"{sid}:status:{raw_status}", "message.status", callback.payload
    )
    claims.finish(claimed, "")
    if not claimed.fresh:
        return
    new = MESSAGE_STATUS.get(raw_status)
    message = session.scalars(select(Message).where(Message.provider_id == sid)).first()
    if new is None or message is None:
        log.info("status %s for message %s ignored (unknown status or message)", raw_status, sid)
        return
    if not should_advance(message.status, new):
        return
    was_failed = message.status in FAILED
    message.status = new
    if callback.error_code:
        message.error_code = callback.error_code
    contact = _contact(session, message)
    if contact is None:
        return
    if new in FAILED and not was_failed:
        contacts.record_failure(session, contact, error_code=message.error_code, reference=sid)
    elif new in (MessageStatus.DELIVERED, MessageStatus.READ):
        contacts.record_success(session, contact, sent_at=message.created_at)


def _contact(session: Session, message: Message) -> Contact | None:
    if not message.address:
        return None
    return contacts.contact_for(
        session, message.channel, message.address
    ) or repository.find_contact(session, message.channel, message.address)
