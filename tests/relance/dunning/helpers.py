"""Data builders and fakes shared by the dunning, compliance, letters, evidence and worker tests."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from relance.conversations.ports import DeliveryError
from relance.conversations.repository import conversation_for_debtor
from relance.db.base import utcnow
from relance.db.models import Contact, Conversation, Debtor, Invoice, Message
from relance.db.models.enums import Direction
from relance.rasa_client import BotMessage

_seq = itertools.count(1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def make_debtor(
    db: Session,
    *,
    segment: str = "consumer",
    risk_class: str = "standard",
    jurisdiction: str = "FR",
    timezone: str = "Europe/Paris",
    channels: tuple[str, ...] = ("sms", "whatsapp"),
    language: str = "fr",
    address: bool = True,
    name: str = "Jeanne Martin",
    company: str | None = None,
    postcode: str = "69003",
    city: str = "Lyon",
    country: str = "FR",
    phone: str | None = None,
) -> Debtor:
    n = next(_seq)
    debtor = Debtor(
        customer_number=f"T-{n:05d}-{id(db) % 9973}",
        name=name,
        company=company,
        segment=segment,
        risk_class=risk_class,
        jurisdiction=jurisdiction,
        timezone=timezone,
        language=language,
        address_line="8 avenue des Tilleuls" if address else None,
        postcode=postcode if address else None,
        city=city if address else None,
        country=country,
    )
    db.add(debtor)
    db.flush()
    phone = phone or f"+3361{n:07d}"[:12]
    for channel in channels:
        address_value = f"whatsapp:{phone}" if channel == "whatsapp" else phone
        db.add(Contact(debtor_id=debtor.id, channel=channel, address=address_value))
    db.flush()
    db.refresh(debtor)
    return debtor


def make_invoice(
    db: Session,
    debtor: Debtor,
    *,
    due: date,
    amount_minor: int = 12000,
    paid_minor: int = 0,
    status: str = "open",
    issued: date | None = None,
    number: str | None = None,
) -> Invoice:
    n = next(_seq)
    invoice = Invoice(
        debtor_id=debtor.id,
        number=number or f"F-{n:06d}-{id(db) % 9973}",
        amount_minor=amount_minor,
        paid_minor=paid_minor,
        currency="EUR",
        issue_date=issued or due - timedelta(days=30),
        due_date=due,
        status=status,
    )
    db.add(invoice)
    db.flush()
    return invoice


def add_message(
    db: Session,
    debtor: Debtor,
    *,
    channel: str,
    direction: str,
    at: datetime,
    address: str | None = None,
) -> Message:
    conversation = conversation_for_debtor(db, debtor)
    message = Message(
        conversation_id=conversation.id,
        direction=direction,
        channel=channel,
        author="debtor" if direction == Direction.INBOUND else "bot",
        body="…",
        address=address,
        status="delivered",
        created_at=at,
    )
    db.add(message)
    db.flush()
    return message


class FakeGateway:
    """Records every send; `fail[channel]` is a list of errors raised on the next sends."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail: dict[str, list[DeliveryError]] = {}

    def _record(
        self,
        session: Session,
        conversation: Conversation,
        contact: Contact,
        channel: str,
        body: str,
        **extra: Any,
    ) -> Message:
        errors = self.fail.get(channel) or []
        if errors:
            raise errors.pop(0)
        message = Message(
            conversation_id=conversation.id,
            direction="outbound",
            channel=channel,
            author="bot",
            body=body,
            address=contact.address,
            status="queued",
        )
        session.add(message)
        session.flush()
        self.sent.append(
            {
                "channel": channel,
                "body": body,
                "debtor_id": conversation.debtor_id,
                "address": contact.address,
                "message_id": message.id,
                **extra,
            }
        )
        return message

    def send_text(
        self,
        session: Session,
        *,
        conversation: Conversation,
        contact: Contact,
        text: str,
        author: str,
        first_contact_template: bool = False,
    ) -> Message:
        return self._record(
            session,
            conversation,
            contact,
            contact.channel,
            text,
            first_contact_template=first_contact_template,
        )

    def place_call(
        self, session: Session, *, conversation: Conversation, contact: Contact, purpose: str
    ) -> Message:
        return self._record(session, conversation, contact, "voice", purpose)


class FakeAssistant:
    """Stands in for Rasa's trigger_intent: answers one text naming the stage and invoices."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.events: list[list[dict[str, Any]]] = []
        self.error = error

    def append_events(self, sender_id: str, events: list[dict[str, Any]]) -> None:
        self.events.append(events)

    def trigger_intent(
        self, sender_id: str, intent: str, entities: dict[str, Any] | None = None
    ) -> list[BotMessage]:
        self.calls.append((sender_id, intent, dict(entities or {})))
        if self.error:
            raise self.error
        refs = ", ".join((entities or {}).get("invoice_refs", []))
        return [BotMessage(text=f"[{(entities or {}).get('stage')}] {refs}")]


def verify_contact_point(db: Session, debtor: Debtor) -> None:
    """The debtor answered from their number (days ago) and passed the identity check."""
    sms = next(c for c in debtor.contacts if c.channel == "sms")
    when = utcnow() - timedelta(days=5)
    add_message(db, debtor, channel="sms", direction="inbound", at=when, address=sms.address)
    conversation_for_debtor(db, debtor).identity_verified_at = when
    db.flush()
