"""Queries for the conversation path."""

from __future__ import annotations

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from relance.db.models import Contact, Conversation, Debtor, Message
from relance.db.models.enums import Author, Channel, Direction, MessageStatus
from relance.handoff.repository import open_handoff


def find_contact(session: Session, channel: str, address: str) -> Contact | None:
    """The debtor's contact point for this channel; voice and SMS share the phone number."""
    channels = [channel]
    if channel in (Channel.SMS, Channel.VOICE, Channel.SIMULATOR):
        channels = [Channel.SMS, Channel.VOICE]
    return session.scalars(
        select(Contact)
        .where(Contact.address == address, Contact.channel.in_(channels))
        .order_by(Contact.id)
        .limit(1)
    ).first()


def conversation_for_debtor(session: Session, debtor: Debtor) -> Conversation:
    """One conversation per debtor across channels, created on first contact.

    Two first messages of one debtor can reach two api processes at once: the loser's insert hits
    the unique constraint (PostgreSQL makes it wait for the winner's commit), so it takes the
    winner's row instead of failing the webhook.
    """
    query = select(Conversation).where(Conversation.debtor_id == debtor.id)
    conversation = session.scalars(query).first()
    if conversation is None:
        conversation = Conversation(
            debtor_id=debtor.id, sender_id=f"debtor-{debtor.id}", language=debtor.language
        )
        try:
            with session.begin_nested():
                session.add(conversation)
                session.flush()
        except IntegrityError:
            conversation = session.scalars(query).one()
    return conversation


def pending_messages(session: Session, conversation_id: int) -> list[Message]:
    """Inbound messages kept while the assistant was unreachable, oldest first."""
    return list(
        session.scalars(
            select(Message)
            .where(
                Message.conversation_id == conversation_id,
                Message.status == MessageStatus.PENDING_ASSISTANT,
            )
            .order_by(Message.id)
        )
    )


def conversations_with_pending(session: Session) -> list[int]:
    return list(
        session.scalars(
            select(Message.conversation_id)
            .where(Message.status == MessageStatus.PENDING_ASSISTANT)
            .group_by(Message.conversation_id)
            .order_by(Message.conversation_id)
        )
    )


def first_held_since_handoff(session: Session, conversation_id: int, message_id: int) -> bool:
    """Whether this held message is the debtor's first since the open handoff began, with no
    collector message since: the one to acknowledge ("a person has your message").

    Not when no handoff is open (a collector took the conversation over and is there), nor once
    a collector has written (they are talking with the debtor: an acknowledgement would be noise).
    """
    handoff = open_handoff(session, conversation_id)
    if handoff is None:
        return False
    earlier = session.scalar(
        select(func.count())
        .select_from(Message)
        .where(
            Message.conversation_id == conversation_id,
            Message.id != message_id,
            Message.created_at >= handoff.created_at,
            or_(
                and_(
                    Message.direction == Direction.INBOUND,
                    Message.status == MessageStatus.HELD,
                ),
                Message.author == Author.COLLECTOR,
            ),
        )
    )
    return not earlier
