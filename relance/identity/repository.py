"""Lookups the identity check needs."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import Contact, Conversation, Debtor, Message
from relance.db.models.enums import Direction


def get_debtor(session: Session, debtor_id: str | int | None) -> Debtor | None:
    if debtor_id in (None, ""):
        return None
    try:
        return session.get(Debtor, int(debtor_id))
    except (TypeError, ValueError):
        return None


def get_conversation(
    session: Session, *, conversation_id: str | int | None = None, sender_id: str | None = None
) -> Conversation | None:
    """By our id (slot `conversation_id`), else by the Rasa sender id."""
    if conversation_id not in (None, ""):
        try:
            found = session.get(Conversation, int(conversation_id))
        except (TypeError, ValueError):
            found = None
        if found is not None:
            return found
    if sender_id:
        return session.scalars(
            select(Conversation).where(Conversation.sender_id == sender_id)
        ).first()
    return None


def last_inbound_address(session: Session, conversation_id: int, channel: str | None) -> str | None:
    query = select(Message.address).where(
        Message.conversation_id == conversation_id, Message.direction == Direction.INBOUND
    )
    if channel:
        query = query.where(Message.channel == channel)
    return session.scalars(query.order_by(Message.id.desc()).limit(1)).first()


def find_contact(
    session: Session, debtor_id: int | None, channel: str | None, address: str | None
) -> Contact | None:
    """The contact used: by address when known, else the debtor's only contact on the channel."""
    if debtor_id is None or not channel:
        return None
    query = select(Contact).where(Contact.debtor_id == debtor_id, Contact.channel == channel)
    if address:
        query = query.where(Contact.address == address)
    found = list(session.scalars(query))
    return found[0] if len(found) == 1 else None
