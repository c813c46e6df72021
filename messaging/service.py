"""Inbound SMS/WhatsApp: idempotent by MessageSid, then the shared conversation path."""

from __future__ import annotations

from fastapi import HTTPException
from sqlalchemy import select
from sqlalchemy.orm import Session

from messaging.addresses import InvalidAddress, parse_twilio_from
from messaging.twiml import messages_twiml
from relance.conversations.service import Inbound, handle_inbound
from relance.db.base import utcnow
from relance.db.models import WebhookEvent
from relance.rasa_client import client_from_settings

MAX_BODY = 1600  # Twilio's own limit for one message


def handle_inbound_webhook(session: Session, fields: dict[str, str]) -> str:
    sid = fields.get("MessageSid") or fields.get("SmsSid")
    sender = fields.get("From")
    if not sid or not sender:
        raise HTTPException(status_code=400, detail="MessageSid and From are required")
    previous = session.scalars(
        select(WebhookEvent).where(WebhookEvent.provider == "twilio", WebhookEvent.event_id == sid)
    ).first()
    if previous is not None and previous.response_body is not None:
        return previous.response_body  # a retry: same answer, nothing changes
    try:
        channel, address = parse_twilio_from(sender)
    except InvalidAddress as exc:
        raise HTTPException(status_code=400, detail="From is not a valid phone number") from exc
    body = (fields.get("Body") or "")[:MAX_BODY]
    rasa = client_from_settings()
    try:
        result = handle_inbound(
            session, rasa, Inbound(channel=channel, address=address, body=body, provider_id=sid)
        )
    finally:
        rasa.close()
    answer = messages_twiml(result.replies)
    session.add(
        WebhookEvent(
            provider="twilio", event_id=sid, kind="message.inbound", payload=fields,
            response_body=answer, processed_at=utcnow(),
        )
    )
    return answer
