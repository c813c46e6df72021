"""Builders shared by the mail tests."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from relance.conversations.repository import conversation_for_debtor
from relance.db.base import utcnow
from relance.db.models import Debtor, Message
from relance.db.models.enums import Direction


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
