"""What a collector does on a conversation. Each function changes state, audits it, and leaves
the commit to the request boundary.

A refusal is one of the project's errors (relance/errors.py) with a code per case; the console
routes show its message on the conversation page.

Rasa is told about collector messages and the hand-back, but it being down never blocks the
collector: the state change is ours, Rasa catches up from the tracker events it missed.
"""

from __future__ import annotations

import logging
import uuid
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from console.queries import live_handoff
from relance import audit
from relance.conversations.assistant_turn import probe_from_settings, trigger_turn
from relance.conversations.ports import (
    DeliveryError,
    OutboundMail,
    get_gateway,
    get_mail_gateway,
)
from relance.db.base import utcnow
from relance.db.models import (
    Contact,
    Conversation,
    Dispute,
    Handoff,
    Message,
    PaymentPlan,
    Promise,
    User,
)
from relance.db.models.enums import (
    Author,
    Channel,
    ConversationMode,
    DisputeStatus,
    HandoffStatus,
)
from relance.disputes import service as disputes_service
from relance.errors import (
    Conflict,
    InvalidContent,
    PolicyViolation,
    RelanceError,
    Unavailable,
)
from relance.handoff import service as handoff_service
from relance.plans import service as plans_service
from relance.promises import service as promises_service
from relance.rasa_client import client_from_settings

log = logging.getLogger(__name__)
RESUME_INTENT = "EXTERNAL_resume"
MAX_REPLY = 1600


def _no_debtor() -> Conflict:
    return Conflict("no_known_debtor", "This conversation has no known debtor.")


def _not_delivered(exc: DeliveryError, what: str) -> RelanceError:
    """A send the gateway refused: worth retrying later (Unavailable) or not (Conflict); the
    provider's own code travels as `delivery_code`."""
    kind = Unavailable if exc.retryable else Conflict
    return kind("delivery_failed", f"The {what} could not be sent: {exc}", delivery_code=exc.code)


def _missing_wording(name: str) -> Conflict:
    return Conflict(
        "wording_missing", f"No wording named {name}: an admin must add it under Wording."
    )


def _actor(user: User) -> str:
    return f"user:{user.email}"


def take_over(session: Session, conversation: Conversation, user: User) -> Handoff:
    """The collector owns the conversation: the bot stops answering (inbound is held for them)."""
    handoff = live_handoff(session, conversation.id)
    if handoff is None:
        handoff = handoff_service.create_handoff(
            session, conversation, reason="collector_initiated", actor=_actor(user)
        )
    elif handoff.assigned_to_id not in (None, user.id):
        previous = handoff.assigned_to_id
        audit.record(
            session,
            actor=_actor(user),
            action="handoff.reassigned",
            entity=handoff,
            debtor_id=conversation.debtor_id,
            previous_user_id=previous,
        )
    handoff.status = HandoffStatus.ASSIGNED
    handoff.assigned_to_id = user.id
    conversation.mode = ConversationMode.HUMAN
    session.flush()
    audit.record(
        session,
        actor=_actor(user),
        action="conversation.taken_over",
        entity=conversation,
        debtor_id=conversation.debtor_id,
        handoff_id=handoff.id,
    )
    return handoff


def reply_contact(session: Session, conversation: Conversation) -> Contact:
    """The contact point of the channel the debtor last used (a voice caller gets an SMS)."""
    if conversation.debtor_id is None:
        raise _no_debtor()
    channel = conversation.last_channel or Channel.SMS
    if channel in (Channel.VOICE, Channel.SIMULATOR):
        channel = Channel.SMS
    contacts = list(
        session.scalars(
            select(Contact).where(Contact.debtor_id == conversation.debtor_id).order_by(Contact.id)
        )
    )
    same_channel = [c for c in contacts if c.channel == channel]
    if not same_channel:
        raise Conflict("no_contact", f"The debtor has no {channel} contact to reply on.")
    reachable = [c for c in same_channel if c.reachable]
    if not reachable:
        raise PolicyViolation(
            "contact_opted_out",
            f"The debtor's {channel} contact has opted out or withdrawn consent: no reply can be sent.",
        )
    return reachable[0]


def _require_owner(session: Session, conversation: Conversation, user: User) -> None:
    handoff = live_handoff(session, conversation.id)
    if conversation.mode != ConversationMode.HUMAN or handoff is None:
        raise Conflict("not_taken_over", "Take over the conversation before replying.")
    if handoff.assigned_to_id != user.id:
        raise Conflict("owned_by_another", "Another collector owns this conversation.")


def reply(session: Session, conversation: Conversation, user: User, text: str) -> None:
    """Send the collector's text on the debtor's last channel and put it in the bot's memory."""
    text = text.strip()
    if not text:
        raise InvalidContent("reply_required", "The reply is empty.")
    if len(text) > MAX_REPLY:
        raise InvalidContent("reply_too_long", f"The reply is longer than {MAX_REPLY} characters.")
    _require_owner(session, conversation, user)
    contact = reply_contact(session, conversation)
    _deliver(
        session,
        conversation,
        user,
        contact,
        text,
        what="message",
        action="message.collector_reply",
        address=contact.address,
    )


def _deliver(
    session: Session,
    conversation: Conversation,
    user: User,
    contact: Contact,
    text: str,
    *,
    what: str,
    action: str,
    entity: object | None = None,
    **details: Any,
) -> Message:
    """Send a collector's text, put it in the bot's memory and audit it as `action` (on `entity`,
    the message by default); a failure is audited as `<action>_failed` and told to the collector."""
    try:
        message = _send_text(
            session, conversation=conversation, contact=contact, text=text, author=Author.COLLECTOR
        )
    except DeliveryError as exc:
        audit.record(
            session,
            actor=_actor(user),
            action=f"{action}_failed",
            entity=conversation,
            debtor_id=conversation.debtor_id,
            error=str(exc),
            code=exc.code,
        )
        raise _not_delivered(exc, what) from exc
    conversation.last_message_at = utcnow()
    audit.record(
        session,
        actor=_actor(user),
        action=action,
        entity=entity if entity is not None else message,
        debtor_id=conversation.debtor_id,
        channel=contact.channel,
        message_id=message.id,
        **details,
    )
    _tell_rasa(conversation, [{"event": "bot", "text": text, "metadata": {"author": "collector"}}])
    return message


def release_to_bot(session: Session, conversation: Conversation, user: User) -> None:
    """First half of a hand-back: close the handoff and give the conversation back to the bot.

    The caller commits before `prompt_bot_after_hand_back`: the bot's turn runs actions that
    write to the database, and on SQLite a transaction kept open across that turn would make
    them wait for it until Rasa timed out.
    """
    handoff_service.close_handoffs(session, conversation, actor=_actor(user))
    handoff_service.resume_bot(session, conversation, actor=_actor(user))
    session.flush()


def prompt_bot_after_hand_back(session: Session, conversation: Conversation) -> bool:
    """Second half: resume the tracker and let the bot speak in context.

    Returns whether the assistant was reached. Rasa being down still hands back (logged): the
    next debtor message reaches the bot normally.
    """
    rasa = client_from_settings()
    try:
        rasa.append_events(conversation.sender_id, [{"event": "resume"}])
        replies = trigger_turn(
            rasa, conversation.sender_id, RESUME_INTENT, None, probe_from_settings()
        )
    except Exception as exc:  # never block the hand-back (AssistantUnavailable, HTTP errors)
        log.warning("hand-back of conversation %s: rasa unreachable (%s)", conversation.id, exc)
        audit.record(
            session,
            actor="system",
            action="conversation.resume_deferred",
            entity=conversation,
            debtor_id=conversation.debtor_id,
            error=str(exc)[:300],
        )
        return False
    finally:
        rasa.close()
    texts = [m.text for m in replies if m.text]
    if not texts:
        return True
    try:
        contact = reply_contact(session, conversation)
        for text in texts:
            _send_text(
                session, conversation=conversation, contact=contact, text=text, author=Author.BOT
            )
    except (RelanceError, DeliveryError) as exc:  # the hand-back stands; the bot speaks next time
        log.warning(
            "hand-back of conversation %s: bot reply not delivered (%s)", conversation.id, exc
        )
    return True


def _tell_rasa(conversation: Conversation, events: list[dict[str, object]]) -> None:
    rasa = client_from_settings()
    try:
        rasa.append_events(conversation.sender_id, events)
    except Exception as exc:
        log.warning("could not append events for %s: %s", conversation.sender_id, exc)
    finally:
        rasa.close()


def decide_plan(
    session: Session, plan: PaymentPlan, user: User, *, approve: bool, note: str = ""
) -> None:
    """Approve or reject a plan the bot could not grant within policy limits
    (`Conflict("plan_not_pending")` once decided)."""
    plans_service.decide_approval(session, plan, approve=approve, actor=_actor(user), note=note)


def decide_dispute(
    session: Session, dispute: Dispute, user: User, *, upheld: bool, note: str
) -> None:
    """Upheld: the invoice is cancelled and dunning on it stops. Rejected: dunning resumes."""
    if dispute.status != DisputeStatus.OPEN:
        raise Conflict("dispute_closed", "This dispute is already closed.")
    if not note.strip():
        raise InvalidContent("note_required", "Write a resolution note: it is kept as evidence.")
    disputes_service.decide_dispute(session, dispute, upheld=upheld, note=note, actor=_actor(user))


def record_promise(
    session: Session,
    conversation: Conversation,
    user: User,
    *,
    amount_minor: int,
    currency: str,
    promised_date: date,
) -> Promise:
    """A promise taken by phone or chat: the dunning planner skips the covered invoices until
    that date, and the follow-up worker checks the money afterwards."""
    debtor = conversation.debtor
    if debtor is None:
        raise _no_debtor()
    if amount_minor <= 0:
        raise InvalidContent("invalid_amount", "The promised amount must be positive.")
    if promised_date < date.today():
        raise InvalidContent("promise_date_past", "The promised date is in the past.")
    promise = promises_service.record_promise(
        session,
        debtor,
        amount_minor=amount_minor,
        promised_date=promised_date,
        currency=currency,
        source="collector",
    )
    audit.record(
        session,
        actor=_actor(user),
        action="promise.taken_by_collector",
        entity=promise,
        debtor_id=debtor.id,
        amount_minor=amount_minor,
        currency=currency,
        promised_date=promised_date.isoformat(),
    )
    return promise


PAYMENT_LINK_RESPONSE = "utter_collector_payment_link"


def send_payment_link(
    session: Session, conversation: Conversation, user: User, *, amount_minor: int | None = None
) -> str:
    """Create a payment link (full balance, or a part of it) and text it on the debtor's channel.

    The wording is the `utter_collector_payment_link` template, in the conversation's language.
    Returns the URL (shown to the collector).
    """
    from payment_links.service import create_link
    from relance.nlg.renderer import UnknownResponse, render
    from relance.nlg.templates_store import active_templates
    from relance.settings import get_settings

    _require_owner(session, conversation, user)
    debtor = conversation.debtor
    if debtor is None:
        raise _no_debtor()
    contact = reply_contact(session, conversation)
    if amount_minor is not None and amount_minor <= 0:
        raise InvalidContent("invalid_amount", "The amount must be positive.")
    # PolicyViolation("nothing_owed" | "mixed_currencies"): its message is shown as is
    link, url = create_link(session, debtor=debtor, purpose="balance", amount_minor=amount_minor)
    try:
        text = render(
            active_templates(session),
            PAYMENT_LINK_RESPONSE,
            language=conversation.language,
            channel=contact.channel,
            variables={
                "url": url,
                "link": url,
                "amount": link.amount_minor,
                "currency": link.currency,
                "creditor_name": get_settings().creditor_name,
            },
        )
    except UnknownResponse as exc:
        raise _missing_wording(PAYMENT_LINK_RESPONSE) from exc
    try:
        message = _send_text(
            session,
            conversation=conversation,
            contact=contact,
            text=text,
            author=Author.COLLECTOR,
        )
    except DeliveryError as exc:
        raise _not_delivered(exc, "link") from exc
    conversation.last_message_at = utcnow()
    audit.record(
        session,
        actor=_actor(user),
        action="payment_link.sent",
        entity=link,
        debtor_id=debtor.id,
        amount_minor=link.amount_minor,
        currency=link.currency,
        channel=contact.channel,
        message_id=message.id,
    )
    _tell_rasa(conversation, [{"event": "bot", "text": text, "metadata": {"author": "collector"}}])
    return url


def _send_text(
    session: Session, *, conversation: Conversation, contact: Contact, text: str, author: str
) -> Message:
    """Send on the contact's channel: texts through the Twilio gateway, e-mail through the mail
    gateway (one e-mail, threaded in the debtor's conversation)."""
    if contact.channel == Channel.EMAIL:
        mail = OutboundMail(
            idempotency_key=f"console:{conversation.id}:{uuid.uuid4().hex}",
            paragraphs=(text,),
            author=author,
        )
        return get_mail_gateway().send_mail(
            session, conversation=conversation, contact=contact, mail=mail
        )
    return get_gateway().send_text(
        session, conversation=conversation, contact=contact, text=text, author=author
    )


PORTAL_LINK_RESPONSE = "utter_collector_portal_link"


def send_portal_link(session: Session, conversation: Conversation, user: User) -> str:
    """Issue a personal portal link (relance.portal) and text it on the debtor's channel.

    Earlier links of the debtor keep working until they expire or are revoked. Returns the URL.
    """
    from relance.nlg.renderer import UnknownResponse, render
    from relance.nlg.templates_store import active_templates
    from relance.portal.access import issue_access
    from relance.settings import get_settings

    _require_owner(session, conversation, user)
    debtor = conversation.debtor
    if debtor is None:
        raise _no_debtor()
    contact = reply_contact(session, conversation)
    access, url = issue_access(session, debtor, actor=_actor(user))
    settings = get_settings()
    try:
        text = render(
            active_templates(session),
            PORTAL_LINK_RESPONSE,
            language=conversation.language,
            channel=contact.channel,
            variables={
                "url": url,
                "days": settings.portal_link_ttl_days,
                "creditor_name": settings.creditor_name,
            },
        )
    except UnknownResponse as exc:
        raise _missing_wording(PORTAL_LINK_RESPONSE) from exc
    _deliver(
        session,
        conversation,
        user,
        contact,
        text,
        what="link",
        action="portal.link_sent",
        entity=access,
    )
    return url


def revoke_portal_links(session: Session, conversation: Conversation, user: User) -> int:
    """End every live portal link of the debtor (a lost phone, a link sent to the wrong person)."""
    from relance.portal.access import live_accesses, revoke

    if conversation.debtor is None:
        raise _no_debtor()
    revoked = 0
    for access in live_accesses(session, conversation.debtor.id):
        revoked += revoke(session, access, actor=_actor(user))
    return revoked
