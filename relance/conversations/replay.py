"""Replay what the assistant missed while it was down, and deliver its answers (worker task).

Inbound messages kept as `pending_assistant` are sent to Rasa in order, conversation by
conversation; the replies go out through the installed gateway on the channel the debtor used
(a caller gets the answer by SMS: the call is over). The first conversation that still cannot
be replayed stops the run: the assistant is still down, trying the others would only wait.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.contacts import service as contacts
from relance.conversations import reply_retry, repository
from relance.conversations.ports import (
    DeliveryError,
    OutboundGateway,
    OutboundMail,
    get_gateway,
    get_mail_gateway,
)
from relance.conversations.service import replay_conversation, store_outbound
from relance.db.models import Contact, Conversation, Message
from relance.db.models.enums import Author, Channel, Direction
from relance.rasa_client import RasaClient

log = logging.getLogger(__name__)
TEXT_CHANNELS = (Channel.SMS, Channel.WHATSAPP, Channel.VOICE)


def replay_all(session: Session, rasa: RasaClient) -> int:
    """Replay every conversation with kept messages; returns how many messages were replayed."""
    gateway = get_gateway()
    total = 0
    for conversation_id in repository.conversations_with_pending(session):

        def deliver(conversation: Conversation, channel: str, replies: list[str]) -> None:
            _deliver(session, gateway, conversation, channel, replies)

        outcome = replay_conversation(session, rasa, conversation_id, deliver)
        total += outcome.replayed
        if outcome.assistant_down:
            log.info(
                "assistant still unavailable; replay stops at conversation %s", conversation_id
            )
            break
    return total


def _deliver(
    session: Session,
    gateway: OutboundGateway,
    conversation: Conversation,
    channel: str,
    replies: list[str],
) -> None:
    if channel == Channel.EMAIL:
        _deliver_mail(session, conversation, replies)
        return
    contact = _reply_contact(session, conversation, channel)
    if contact is None:  # e.g. the web simulator: keep the replies in the transcript
        for reply in replies:
            store_outbound(session, conversation, channel, reply, Author.BOT)
        return
    for reply in replies:
        try:
            gateway.send_text(
                session, conversation=conversation, contact=contact, text=reply, author=Author.BOT
            )
        except (
            DeliveryError
        ) as exc:  # the gateway stored the failed attempt; the transcript shows it
            log.warning(
                "replayed reply for conversation %s not delivered: %s", conversation.id, exc
            )
            reply_retry.after_failure(
                session, conversation=conversation, contact=contact, error=exc
            )


def _deliver_mail(session: Session, conversation: Conversation, replies: list[str]) -> None:
    """Replayed answers to an e-mail go back as one e-mail in the thread, to the address the
    debtor wrote from; keyed on the kept message so a second replay run sends nothing more.
    The answers are stored first, as the inbound path stores them: the e-mail is the first row,
    and a retry sends the same rows again."""
    last = session.scalars(
        select(Message)
        .where(
            Message.conversation_id == conversation.id,
            Message.direction == Direction.INBOUND,
            Message.channel == Channel.EMAIL,
            Message.address.is_not(None),
        )
        .order_by(Message.id.desc())
        .limit(1)
    ).first()
    contact = (
        contacts.contact_for(session, Channel.EMAIL, last.address)
        if last is not None and last.address
        else None
    )
    rows = [store_outbound(session, conversation, Channel.EMAIL, r, Author.BOT) for r in replies]
    if last is None or contact is None:
        return
    mail = OutboundMail(
        idempotency_key=f"replay:{last.provider_id or last.id}",
        paragraphs=tuple(replies),
        reply_rows=tuple(row.id for row in rows),
    )
    try:
        get_mail_gateway().send_mail(session, conversation=conversation, contact=contact, mail=mail)
    except DeliveryError as exc:
        log.warning("replayed e-mail for conversation %s not delivered: %s", conversation.id, exc)
        reply_retry.after_failure(
            session, conversation=conversation, contact=contact, error=exc, mail=mail
        )


def _reply_contact(session: Session, conversation: Conversation, channel: str) -> Contact | None:
    """Where the debtor last wrote (or called) from on that channel; calls are answered by SMS."""
    if channel not in TEXT_CHANNELS:
        return None
    address = session.scalars(
        select(Message.address)
        .where(
            Message.conversation_id == conversation.id,
            Message.direction == Direction.INBOUND,
            Message.channel == channel,
            Message.address.is_not(None),
        )
        .order_by(Message.id.desc())
        .limit(1)
    ).first()
    if address is None:
        return None
    text_channel = Channel.WHATSAPP if channel == Channel.WHATSAPP else Channel.SMS
    return contacts.contact_for(session, text_channel, address) or repository.find_contact(
        session, channel, address
    )
