"""Small factories for API tests: each adds a row with sensible defaults and flushes it."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from relance.auth.tokens import create_token
from relance.db.models import (
    Contact,
    Conversation,
    Debtor,
    Dispute,
    Handoff,
    Installment,
    Invoice,
    Letter,
    Message,
    PaymentPlan,
    Promise,
)

_seq = itertools.count(1)
M = TypeVar("M")


def _add(db: Session, row: M) -> M:
    db.add(row)
    db.flush()
    return row


def debtor(db: Session, **kw: Any) -> Debtor:
    n = next(_seq)
    values: dict[str, Any] = {
        "customer_number": f"T-{n:05d}",
        "name": f"Debtor {n}",
        "language": "fr",
    }
    values.update(kw)
    return _add(db, Debtor(**values))


def contact(db: Session, owner: Debtor, address: str, channel: str = "sms", **kw: Any) -> Contact:
    return _add(db, Contact(debtor_id=owner.id, channel=channel, address=address, **kw))


def invoice(db: Session, owner: Debtor, **kw: Any) -> Invoice:
    values: dict[str, Any] = {
        "number": f"INV-{next(_seq):06d}",
        "amount_minor": 10_000,
        "currency": "EUR",
        "issue_date": date(2026, 10, 1),
        "due_date": date(2026, 11, 1),
    }
    values.update(kw)
    return _add(db, Invoice(debtor_id=owner.id, **values))


def dispute(db: Session, owner: Debtor, **kw: Any) -> Dispute:
    values: dict[str, Any] = {"reference": f"D-{next(_seq):06d}", "reason": "amount_wrong"}
    values.update(kw)
    return _add(db, Dispute(debtor_id=owner.id, **values))


def plan(db: Session, owner: Debtor, installments: int = 2, **kw: Any) -> PaymentPlan:
    values: dict[str, Any] = {
        "total_minor": 10_000,
        "currency": "EUR",
        "installments_count": installments,
        "frequency": "monthly",
    }
    values.update(kw)
    row = PaymentPlan(debtor_id=owner.id, **values)
    share = row.total_minor // installments
    row.installments = [
        Installment(seq=i + 1, due_date=date(2027, 1 + i, 1), amount_minor=share)
        for i in range(installments)
    ]
    return _add(db, row)


def promise(db: Session, owner: Debtor, **kw: Any) -> Promise:
    values: dict[str, Any] = {
        "amount_minor": 5_000,
        "currency": "EUR",
        "promised_date": date(2026, 12, 15),
    }
    values.update(kw)
    return _add(db, Promise(debtor_id=owner.id, **values))


def letter(db: Session, owner: Debtor, **kw: Any) -> Letter:
    values: dict[str, Any] = {
        "language": "fr",
        "principal_minor": 10_000,
        "interest_minor": 120,
        "indemnity_minor": 4_000,
        "currency": "EUR",
        "deadline": date(2026, 12, 31),
    }
    values.update(kw)
    return _add(db, Letter(debtor_id=owner.id, **values))


def conversation(db: Session, owner: Debtor | None, **kw: Any) -> Conversation:
    values: dict[str, Any] = {"sender_id": f"+3360000{next(_seq):04d}", "last_channel": "sms"}
    values.update(kw)
    return _add(db, Conversation(debtor_id=owner.id if owner else None, **values))


def message(db: Session, conv: Conversation, body: str, **kw: Any) -> Message:
    values: dict[str, Any] = {
        "direction": "inbound",
        "channel": "sms",
        "author": "debtor",
        "status": "received",
        "created_at": datetime.now(UTC),
    }
    values.update(kw)
    return _add(db, Message(conversation_id=conv.id, body=body, **values))


def handoff(db: Session, conv: Conversation, **kw: Any) -> Handoff:
    values: dict[str, Any] = {"reason": "requested"}
    values.update(kw)
    return _add(db, Handoff(conversation_id=conv.id, **values))


def token(db: Session, name: str = "erp") -> str:
    """A live API token; returns the plaintext to put in `Authorization: Bearer`."""
    _row, plaintext = create_token(db, name)
    return plaintext
