"""Inbound SMS/WhatsApp: claim the MessageSid, then keywords, media, or the conversation path.

Order matters: the webhook row is claimed before anything else so a retried or concurrent
duplicate does nothing and gets the first answer; carrier keywords (STOP/START/HELP) never reach
the assistant; an opted-out debtor's texts are kept, handed to a collector, and answered once at
most (see `_received_while_opted_out`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from messaging import keywords
from messaging.keywords import Keyword
from relance import audit
from relance.contacts import service as contacts
from relance.conversations import repository
from relance.conversations.service import Inbound, handle_inbound, store_inbound, store_outbound
from relance.db.models import Task
from relance.db.models.enums import Author, Channel, ConversationMode
from relance.handoff import service as handoff
from relance.nlg import channel_text
from relance.rasa_client import client_from_settings
from relance.settings import get_settings
from twilio_edge import claims, withheld
from twilio_edge.forms import InboundMessage
from twilio_edge.splitting import split_text
from twilio_edge.twiml import messages_twiml


def handle_inbound_webhook(session: Session, message: InboundMessage) -> str:
    """Process one inbound message exactly once; returns the TwiML answer (stored for retries)."""
    claimed = claims.claim(session, message.sid, "message.inbound", message.payload)
    if not claimed.fresh:
        answer = claims.await_answer(session, claimed, timeout=_duplicate_wait_seconds())
        return answer or messages_twiml([])
    media = message.media_dicts()
    inbound = Inbound(
        channel=message.channel,
        address=message.address,
        body=message.body,
        provider_id=message.sid,
        extra={"media": media} if media else None,
    )
    replies = _dispatch(session, inbound, media)
    return claims.finish(claimed, messages_twiml([s for r in replies for s in split_text(r)]))


def _duplicate_wait_seconds() -> float:
    return get_settings().rasa_timeout_seconds * 3 + 2


def _dispatch(session: Session, inbound: Inbound, media: list[dict[str, str]]) -> list[str]:
    matched = keywords.match(inbound.body)
    if matched is not None:
        return _keyword(session, inbound, *matched)
    contact = repository.find_contact(session, inbound.channel, inbound.address)
    if contact is not None and contacts.is_opted_out(session, inbound.channel, inbound.address):
        return _received_while_opted_out(session, inbound, contact.debtor)
    released: list[str] = []
    if contact is not None and inbound.channel == Channel.WHATSAPP:
        released = _release_withheld(session, inbound, contact.debtor)
    if contact is not None and media and not inbound.body:
        return released + _media_only(session, inbound, contact.debtor, media)
    rasa = client_from_settings()
    try:
        result = handle_inbound(session, rasa, inbound)
    finally:
        rasa.close()
    replies = released + list(result.replies)
    # A conversation id means the number is a known contact (unknown numbers get none).
    if media and contact is not None and result.conversation_id is not None:
        conversation = repository.conversation_for_debtor(session, contact.debtor)
        replies.append(_acknowledge_media(session, inbound, conversation, media))
    return replies


def _release_withheld(session: Session, inbound: Inbound, debtor: Any) -> list[str]:
    """The debtor answered our WhatsApp template: the window is open, deliver what it announced."""
    conversation = repository.conversation_for_debtor(session, debtor)
    texts = withheld.release(session, conversation, inbound.address)
    for text in texts:
        store_outbound(
            session, conversation, inbound.channel, text, Author.BOT, address=inbound.address
        )
    return texts


def _keyword(session: Session, inbound: Inbound, kind: Keyword, language: str | None) -> list[str]:
    normalised = keywords.normalise(inbound.body)
    found = repository.find_contact(session, inbound.channel, inbound.address)
    if found is None:
        audit.record(
            session,
            actor="unknown",
            action="inbound.unknown_number_keyword",
            channel=inbound.channel,
            address=inbound.address,
            keyword=normalised,
            provider_id=inbound.provider_id,
        )
        language = language or get_settings().default_language
        name = {Keyword.OPT_OUT: "utter_opted_out", Keyword.OPT_IN: "utter_opted_in"}.get(
            kind, "utter_help"
        )
        return [channel_text.text(session, name, language=language, channel=inbound.channel)]

    debtor = found.debtor
    conversation = repository.conversation_for_debtor(session, debtor)
    language = language or conversation.language
    message = store_inbound(session, conversation, inbound)
    message.extra = {**(message.extra or {}), "keyword": normalised}
    # The opt-out applies to this channel's row (created if the number was known for voice only).
    contact = contacts.ensure_contact(session, debtor, inbound.channel, inbound.address)
    if kind == Keyword.OPT_OUT:
        changed = contacts.opt_out(session, contact, source=inbound.channel, keyword=normalised)
        response = "utter_opted_out" if changed else None  # one confirmation, not one per STOP
    elif kind == Keyword.OPT_IN:
        contacts.opt_in(session, contact, source=inbound.channel, keyword=normalised)
        response = "utter_opted_in"  # confirmed even when already subscribed: nothing to protect
    else:
        audit.record(
            session,
            actor="debtor",
            action="message.help_requested",
            entity=message,
            debtor_id=debtor.id,
            channel=inbound.channel,
        )
        response = "utter_help"
    if response is None:
        return []
    reply = channel_text.text(session, response, language=language, channel=inbound.channel)
    store_outbound(
        session, conversation, inbound.channel, reply, Author.SYSTEM, address=inbound.address
    )
    return [reply]


def _received_while_opted_out(session: Session, inbound: Inbound, debtor: Any) -> list[str]:
    """A debtor who opted out of this channel writes to us: nothing they say may be lost.

    The assistant does not answer (its replies would be the conversation the debtor asked to
    end): the text is kept and the conversation goes to a collector's inbox, who decides how to
    answer, by a channel the debtor still accepts. The debtor is told so once, in one reply to
    their own message (a reply to a person-initiated message through the restricted medium is
    allowed once, e.g. Reg F 12 CFR 1006.14(h)(2)): not when a collector already has the
    conversation (they were told), and not after a carrier keyword (STOP), whose opt-out the
    carrier enforces by refusing every message to the number.
    """
    conversation = repository.conversation_for_debtor(session, debtor)
    message = store_inbound(session, conversation, inbound)
    audit.record(
        session,
        actor="debtor",
        action="message.received_while_opted_out",
        entity=message,
        debtor_id=debtor.id,
        channel=inbound.channel,
    )
    already_with_collector = conversation.mode == ConversationMode.HUMAN
    reason = handoff.detect_signal(inbound.body) or "opted_out_message"
    handoff.create_handoff(session, conversation, reason=reason, details=inbound.body[:500])
    contact = contacts.contact_for(session, inbound.channel, inbound.address)
    if already_with_collector or contact is None or contacts.opted_out_by_keyword(session, contact):
        return []
    reply = channel_text.text(
        session,
        "utter_opted_out_collector_will_answer",
        language=conversation.language,
        channel=inbound.channel,
    )
    store_outbound(
        session, conversation, inbound.channel, reply, Author.SYSTEM, address=inbound.address
    )
    return [reply]


def _media_only(
    session: Session, inbound: Inbound, debtor: Any, media: list[dict[str, str]]
) -> list[str]:
    """A photo or PDF (often a proof of payment): the assistant cannot read it, a person will."""
    conversation = repository.conversation_for_debtor(session, debtor)
    store_inbound(session, conversation, inbound)
    return [_acknowledge_media(session, inbound, conversation, media)]


def _acknowledge_media(
    session: Session, inbound: Inbound, conversation: Any, media: list[dict[str, str]]
) -> str:
    session.add(
        Task(
            kind="review_attachment",
            debtor_id=conversation.debtor_id,
            details={
                "conversation_id": conversation.id,
                "provider_id": inbound.provider_id,
                "media": media,
            },
        )
    )
    audit.record(
        session,
        actor="debtor",
        action="message.media_received",
        debtor_id=conversation.debtor_id,
        channel=inbound.channel,
        provider_id=inbound.provider_id,
        count=len(media),
    )
    reply = channel_text.text(
        session, "utter_media_received", language=conversation.language, channel=inbound.channel
    )
    store_outbound(
        session, conversation, inbound.channel, reply, Author.SYSTEM, address=inbound.address
    )
    return reply
