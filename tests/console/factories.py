"""Factories for console tests: each adds a row with sensible defaults and flushes it."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from relance.auth.users import create_user
from relance.db.models import (
    Contact,
    Conversation,
    Debtor,
    Dispute,
    Handoff,
    Invoice,
    Message,
    Payment,
    PaymentPlan,
    Promise,
    User,
)

_seq = itertools.count(1)
M = TypeVar("M")
PASSWORD = "correct horse battery"


def _add(db: Session, row: M) -> M:
    db.add(row)
    db.flush()
    return row


def user(db: Session, role: str = "collector", email: str | None = None) -> User:
    email = email or f"{role}{next(_seq)}@example.test"
    return create_user(db, email, PASSWORD, role=role, display_name=f"{role.title()} {email[:3]}")


def debtor(db: Session, **kw: Any) -> Debtor:
    n = next(_seq)
    values: dict[str, Any] = {
        "customer_number": f"C-{n:05d}",
        "name": f"Debtor {n}",
        "language": "fr",
    }
    values.update(kw)
    return _add(db, Debtor(**values))


def contact(
    db: Session, owner: Debtor, address: str | None = None, channel: str = "sms", **kw: Any
) -> Contact:
    address = address or f"+336{next(_seq):08d}"
    return _add(db, Contact(debtor_id=owner.id, channel=channel, address=address, **kw))


def invoice(db: Session, owner: Debtor, **kw: Any) -> Invoice:
    today = date.today()
    values: dict[str, Any] = {
        "number": f"INV-{next(_seq):06d}",
        "amount_minor": 10_000,
        "currency": "EUR",
        "issue_date": today - timedelta(days=40),
        "due_date": today - timedelta(days=10),
    }
    values.update(kw)
    return _add(db, Invoice(debtor_id=owner.id, **values))


def conversation(db: Session, owner: Debtor, **kw: Any) -> Conversation:
    values: dict[str, Any] = {
        "sender_id": f"debtor-{owner.id}",
        "language": owner.language,
        "last_channel": "sms",
    }
    values.update(kw)
    return _add(db, Conversation(debtor_id=owner.id, **values))


def message(
    db: Session, conv: Conversation, body: str, direction: str = "inbound", **kw: Any
) -> Message:
    values: dict[str, Any] = {
        "channel": conv.last_channel or "sms",
        "author": "debtor" if direction == "inbound" else "bot",
        "status": "received" if direction == "inbound" else "sent",
    }
    values.update(kw)
    row = _add(db, Message(conversation_id=conv.id, direction=direction, body=body, **values))
    conv.last_message_at = row.created_at
    return row


def handoff(db: Session, conv: Conversation, **kw: Any) -> Handoff:
    values: dict[str, Any] = {"reason": "requested", "priority": 0}
    values.update(kw)
    return _add(db, Handoff(conversation_id=conv.id, **values))


def dispute(db: Session, owner: Debtor, **kw: Any) -> Dispute:
    values: dict[str, Any] = {"reference": f"D-{next(_seq):06d}", "reason": "amount_wrong"}
    values.update(kw)
    return _add(db, Dispute(debtor_id=owner.id, **values))


def plan(db: Session, owner: Debtor, **kw: Any) -> PaymentPlan:
    values: dict[str, Any] = {
        "total_minor": 60_000,
        "currency": "EUR",
        "installments_count": 8,
        "frequency": "monthly",
        "status": "pending_approval",
    }
    values.update(kw)
    return _add(db, PaymentPlan(debtor_id=owner.id, **values))


def promise(db: Session, owner: Debtor, **kw: Any) -> Promise:
    values: dict[str, Any] = {
        "amount_minor": 5_000,
        "currency": "EUR",
        "promised_date": date.today() + timedelta(days=5),
    }
    values.update(kw)
    return _add(db, Promise(debtor_id=owner.id, **values))


def payment(
    db: Session, owner: Debtor, amount_minor: int, received_at: datetime | None = None, **kw: Any
) -> Payment:
    values: dict[str, Any] = {
        "currency": "EUR",
        "method": "card",
        "provider": "sandbox",
        "provider_ref": f"pay-{next(_seq)}",
        "received_at": received_at or datetime.now(UTC),
    }
    values.update(kw)
    return _add(db, Payment(debtor_id=owner.id, amount_minor=amount_minor, **values))


def handed_off_case(
    db: Session,
    *,
    priority: int = 0,
    name: str | None = None,
    text: str = "Je veux parler à quelqu'un",
) -> tuple[Debtor, Conversation, Handoff]:
    """A debtor with an SMS contact, an overdue invoice, a conversation and an open handoff."""
    owner = debtor(db, **({"name": name} if name else {}))
    contact(db, owner)
    invoice(db, owner)
    conv = conversation(db, owner)
    message(db, conv, text)
    return owner, conv, handoff(db, conv, priority=priority)
