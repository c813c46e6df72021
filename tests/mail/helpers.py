"""Builders shared by the mail tests."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from sqlalchemy.orm import Session

from relance.conversations.repository import conversation_for_debtor
from relance.db.base import utcnow
from relance.db.models import Debtor, DunningAction, Invoice, Message
from relance.db.models.enums import Direction
from tests.factories import make_debtor


def debtor_wrote_by_mail(
    db: Session, debtor: Debtor, message_id: str = "<first-reply@client.example>"
) -> Message:
    """The debtor answered from their address and passed the identity check (days ago)."""
    conversation = conversation_for_debtor(db, debtor)
    when = utcnow() - timedelta(days=3)
    conversation.identity_verified_at = when
    message = Message(
        conversation_id=conversation.id,
        direction=Direction.INBOUND,
        channel="email",
        author="debtor",
        body="Bonjour, je regarde.",
        address=debtor.email,
        provider_id=message_id,
        status="received",
        extra={"subject": "Rappel : facture F-1"},
        created_at=when,
    )
    db.add(message)
    db.flush()
    return message


def plan_email_reminders(db: Session, numbers: Iterable[int]) -> list[DunningAction]:
    """A fresh debtor per number, with one invoice due and its e-mail reminder planned (the
    dispatcher's work of a first reminder wave), spread over 50 recipient domains as a real book
    of debtors is; shared by the dispatcher's cost test and bench/mail/run.py."""
    actions = []
    for n in numbers:
        debtor = make_debtor(db, channels=("email",), email=f"debtor{n}@client{n % 50}.example")
        invoice = Invoice(
            debtor_id=debtor.id,
            number=f"F-2026-{n:06d}",
            amount_minor=12000 + n,
            currency="EUR",
            issue_date=date(2026, 10, 1),
            due_date=date(2026, 11, 20),
        )
        db.add(invoice)
        db.flush()
        action = DunningAction(
            idempotency_key=f"bench:{n}",
            invoice_id=invoice.id,
            debtor_id=debtor.id,
            stage="friendly",
            kind="message",
            group_key=f"bench:{n}",
            channels=["email"],
        )
        db.add(action)
        actions.append(action)
    db.flush()
    return actions
