"""Message status callbacks: delivery progress on the Message, failures flagged on the Contact.

Twilio may send callbacks twice or out of order: a status only ever moves forward (a late "sent"
never overwrites "delivered"), and a contact's failure count rises once per failed message.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from messaging import webhooks
from messaging.statuses import FAILED, MESSAGE_STATUS, should_advance
from relance.contacts import service as contacts
from relance.conversations import repository
from relance.db.models import Contact, Message
from relance.db.models.enums import MessageStatus
from relance.errors import BadInput
from voice.status import handle_call_status

log = logging.getLogger(__name__)


def handle_status_callback(session: Session, fields: dict[str, str]) -> None:
    sid = fields.get("MessageSid") or fields.get("SmsSid")
    if not sid:
        if fields.get("CallSid"):
            handle_call_status(session, fields)
            return
        raise BadInput("missing_field", "MessageSid or CallSid is required")
    raw_status = (fields.get("MessageStatus") or fields.get("SmsStatus") or "").lower()
    if not raw_status:
        raise BadInput("missing_field", "MessageStatus is required")
    claimed = webhooks.claim(session, f"{sid}:status:{raw_status}", "message.status", fields)
    webhooks.finish(claimed, "")
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
    if fields.get("ErrorCode"):
        message.error_code = fields["ErrorCode"]
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
