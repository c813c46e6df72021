"""Call flows: every spoken turn goes through the shared conversation path (channel "voice").

State travels in the callback URLs Twilio signs (`turn`, `attempt`), so any api replica can
answer the next callback. Each callback is claimed by (CallSid, step) first, so a retried
callback replays the stored TwiML instead of sending the turn to the assistant twice.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance import audit
from relance.compliance import disclosure
from relance.contacts import service as contacts
from relance.conversations import repository
from relance.conversations.ports import DeliveryError, get_gateway
from relance.conversations.reminder_purpose import parse_reminder_purpose
from relance.conversations.service import Inbound, TurnResult, handle_inbound, store_outbound
from relance.db.base import utcnow
from relance.db.models import Contact, Conversation, Handoff, Message, Task
from relance.db.models.enums import (
    Author,
    Channel,
    ConversationMode,
    Direction,
    HandoffStatus,
    MessageStatus,
)
from relance.nlg import channel_text
from relance.rasa_client import client_from_settings
from relance.settings import get_settings
from twilio_edge import claims
from twilio_edge.forms import CallDialResult, CallForm, CallGather, CallStart
from twilio_edge.statuses import CALL_RANK
from voice import twiml
from voice.hours import OpeningHours, parse_hours
from voice.speech import for_speech

log = logging.getLogger(__name__)

MAX_REPROMPTS = 2
# Keypad shortcuts, sent to the assistant as intents so its rules (identity first) still apply.
DTMF_SHORTCUTS = {"1": "/request_payment_link", "0": "/request_human"}
LINK_KEYS = ("payment_url", "url", "link")


# -- webhooks ----------------------------------------------------------------------------------


def start(session: Session, call: CallStart, purpose: str | None) -> str:
    """Call answered (inbound or outbound): voicemail for a machine, else the opening turn."""
    claimed = claims.claim(session, f"{call.sid}:start", "voice.start", call.payload)
    if not claimed.fresh:
        return claimed.event.response_body or twiml.hang_up()
    contact = _contact(session, call)
    if contact is not None:
        conversation = repository.conversation_for_debtor(session, contact.debtor)
        _call_record(session, call, conversation, answered_by=call.answered_by, purpose=purpose)
        if call.outbound and call.machine:
            return claims.finish(claimed, _voicemail(session, call, conversation))
    if call.fax:
        return claims.finish(claimed, twiml.hang_up())
    opening = _opening_text(purpose)
    result = _turn(
        session, call, opening, turn=0, extra={"synthetic": "call_start", "purpose": purpose}
    )
    opened = session.get(Conversation, result.conversation_id) if result.conversation_id else None
    if opened is not None:  # every call opens by saying it is an automated assistant
        result.replies = disclosure.disclose_replies(
            session,
            opened,
            Channel.VOICE,
            result.replies,
            result.reply_message_ids,
            call=True,
        )
    return claims.finish(claimed, _respond(session, call, result, turn=0, attempt=0))


def gathered(session: Session, call: CallGather, turn: int, attempt: int) -> str:
    """The caller spoke, typed, or stayed silent after a prompt."""
    claimed = claims.claim(
        session, f"{call.sid}:gather:{turn}:{attempt}", "voice.gather", call.payload
    )
    if not claimed.fresh:
        return claimed.event.response_body or twiml.hang_up()
    digits, speech = call.digits, call.speech
    if not digits and not speech:
        return claims.finish(claimed, _no_input(session, call, turn, attempt))
    extra: dict[str, object]
    if digits:
        text = DTMF_SHORTCUTS.get(digits, digits)
        extra = {"input": "dtmf", "digits": digits}
    else:
        text = speech
        extra = {"input": "speech", "confidence": call.confidence}
    result = _turn(session, call, text, turn=turn, extra=extra)
    return claims.finish(claimed, _respond(session, call, result, turn=turn, attempt=attempt))


def dial_finished(session: Session, call: CallDialResult, turn: int) -> str:
    """After a <Dial> to a collector: nobody answered → callback task and a polite goodbye."""
    claimed = claims.claim(session, f"{call.sid}:dial:{turn}", "voice.dial", call.payload)
    if not claimed.fresh:
        return claimed.event.response_body or twiml.hang_up()
    status = call.dial_status
    contact = _contact(session, call)
    if call.bridged or contact is None:
        if contact is not None:
            audit.record(
                session,
                actor="system",
                action="call.transferred",
                debtor_id=contact.debtor_id,
                call_sid=call.sid,
                duration=call.dial_duration,
            )
        return claims.finish(claimed, twiml.hang_up())
    conversation = repository.conversation_for_debtor(session, contact.debtor)
    said = _schedule_callback(session, call, conversation, reason=f"transfer_{status or 'failed'}")
    return claims.finish(claimed, twiml.say_and_hang_up([said], conversation.language))


# -- turns -------------------------------------------------------------------------------------


def _turn(
    session: Session, call: CallForm, text: str, *, turn: int, extra: dict[str, object]
) -> TurnResult:
    if call.address is None:
        return TurnResult(
            status="unknown_number",
            replies=[
                channel_text.text(
                    session,
                    "utter_unknown_number",
                    language=get_settings().default_language,
                    channel=Channel.VOICE,
                )
            ],
        )
    rasa = client_from_settings()
    try:
        return handle_inbound(
            session,
            rasa,
            Inbound(
                channel=Channel.VOICE,
                address=call.address,
                body=text,
                provider_id=f"{call.sid}:{turn}",
                extra={"call_sid": call.sid, "turn": turn, **extra},
            ),
        )
    finally:
        rasa.close()


def _respond(
    session: Session, call: CallForm, result: TurnResult, *, turn: int, attempt: int
) -> str:
    conversation = (
        session.get(Conversation, result.conversation_id) if result.conversation_id else None
    )
    if conversation is None:  # unknown or anonymous number: say who we are, disclose nothing
        return twiml.say_and_hang_up(result.replies, get_settings().default_language)
    language = conversation.language
    if result.status == "held_for_collector":
        return _transfer_or_callback(session, call, conversation, [], turn)
    if result.status == "holding":  # the message is kept; the answer will come by SMS
        return twiml.say_and_hang_up(result.replies, language)

    spoken: list[str] = []
    urls: list[str] = []
    for reply in result.replies:
        text, found = for_speech(reply)
        spoken.append(text)
        urls.extend(found)
    for custom in result.custom:
        urls.extend(str(custom[key]) for key in LINK_KEYS if isinstance(custom.get(key), str))
    if urls and _send_links_by_sms(session, call, conversation, list(dict.fromkeys(urls))):
        spoken.append(
            channel_text.text(
                session, "utter_voice_link_sent", language=language, channel=Channel.VOICE
            )
        )
    spoken = [s for s in spoken if s]

    if _handoff_requested(session, conversation, result):
        return _transfer_or_callback(session, call, conversation, spoken, turn)
    if any(c.get("end_call") or c.get("hangup") for c in result.custom):
        return twiml.say_and_hang_up(spoken, language)
    if not spoken:  # the assistant had nothing to say: treat as a no-match
        if attempt >= MAX_REPROMPTS:
            return _give_up(session, call, conversation)
        reprompt = channel_text.text(
            session, "utter_voice_reprompt", language=language, channel=Channel.VOICE
        )
        return twiml.gather([reprompt], language, gather_url(turn + 1, attempt + 1))
    return twiml.gather(spoken, language, gather_url(turn + 1, 0))


def _no_input(session: Session, call: CallForm, turn: int, attempt: int) -> str:
    contact = _contact(session, call)
    if contact is None:
        return twiml.hang_up()
    conversation = repository.conversation_for_debtor(session, contact.debtor)
    if attempt >= MAX_REPROMPTS:
        return _give_up(session, call, conversation)
    reprompt = channel_text.text(
        session, "utter_voice_reprompt", language=conversation.language, channel=Channel.VOICE
    )
    return twiml.gather([reprompt], conversation.language, gather_url(turn, attempt + 1))


def _give_up(session: Session, call: CallForm, conversation: Conversation) -> str:
    """Two reprompts without an answer: say goodbye and offer to continue by SMS."""
    language = conversation.language
    goodbye = channel_text.text(
        session, "utter_voice_goodbye_no_input", language=language, channel=Channel.VOICE
    )
    store_outbound(
        session, conversation, Channel.VOICE, goodbye, Author.SYSTEM, address=call.address
    )
    followup = channel_text.text(
        session, "utter_voice_sms_followup", language=language, channel=Channel.SMS
    )
    _send_sms(session, call, conversation, followup, reason="no_input")
    audit.record(
        session,
        actor="system",
        action="call.no_input",
        debtor_id=conversation.debtor_id,
        call_sid=call.sid,
    )
    return twiml.say_and_hang_up([goodbye], language)


def _voicemail(session: Session, call: CallStart, conversation: Conversation) -> str:
    """A machine answered: a short message with no debt detail, asking for a call back."""
    text = channel_text.text(
        session, "utter_voicemail", language=conversation.language, channel=Channel.VOICE
    )
    store_outbound(session, conversation, Channel.VOICE, text, Author.SYSTEM, address=call.address)
    audit.record(
        session,
        actor="bot",
        action="call.voicemail_left",
        debtor_id=conversation.debtor_id,
        call_sid=call.sid,
        answered_by=call.answered_by,
    )
    return twiml.say_and_hang_up([text], conversation.language)


# -- handoff -----------------------------------------------------------------------------------


def _handoff_requested(session: Session, conversation: Conversation, result: TurnResult) -> bool:
    """The assistant handed off: a custom payload, the conversation now owned by a person, or an
    open handoff created during this turn (written by the action server)."""
    if any(c.get("handoff") or c.get("type") == "handoff" for c in result.custom):
        return True
    if conversation.mode == ConversationMode.HUMAN:
        return True
    return (
        session.scalars(
            select(Handoff.id).where(
                Handoff.conversation_id == conversation.id,
                Handoff.status == HandoffStatus.OPEN,
                Handoff.created_at >= _turn_started(session, result),
            )
        ).first()
        is not None
    )


def _turn_started(session: Session, result: TurnResult) -> datetime:
    message = session.get(Message, result.inbound_message_id) if result.inbound_message_id else None
    return message.created_at if message is not None else utcnow()


def _transfer_or_callback(
    session: Session, call: CallForm, conversation: Conversation, spoken: list[str], turn: int
) -> str:
    settings = get_settings()
    language = conversation.language
    hours = _opening_hours()
    if settings.collector_phone and hours is not None and hours.is_open(utcnow()):
        announce = channel_text.text(
            session, "utter_voice_transfer", language=language, channel=Channel.VOICE
        )
        store_outbound(
            session, conversation, Channel.VOICE, announce, Author.SYSTEM, address=call.address
        )
        audit.record(
            session,
            actor="bot",
            action="call.transfer_started",
            debtor_id=conversation.debtor_id,
            call_sid=call.sid,
            to=settings.collector_phone,
        )
        return twiml.transfer(
            [*spoken, announce],
            language,
            number=settings.collector_phone,
            caller_id=settings.twilio_voice_from,
            action=_url("/twilio/voice/dial", {"turn": turn}),
        )
    said = _schedule_callback(session, call, conversation, reason="handoff")
    return twiml.say_and_hang_up([*spoken, said], language)


def _opening_hours() -> OpeningHours | None:
    """Collector hours from settings; a typo there must not break a live call (logged, closed)."""
    settings = get_settings()
    try:
        return parse_hours(settings.collector_hours, settings.default_timezone)
    except ValueError:
        log.error("COLLECTOR_HOURS is invalid (%r): no live transfer", settings.collector_hours)
        return None


def _schedule_callback(
    session: Session, call: CallForm, conversation: Conversation, *, reason: str
) -> str:
    hours = _opening_hours()
    task = Task(
        kind="callback",
        debtor_id=conversation.debtor_id,
        due_at=hours.next_opening(utcnow()) if hours is not None else utcnow(),
        details={
            "conversation_id": conversation.id,
            "call_sid": call.sid,
            "phone": call.address,
            "reason": reason,
            "language": conversation.language,
        },
    )
    session.add(task)
    session.flush()
    audit.record(
        session,
        actor="bot",
        action="call.callback_scheduled",
        entity=task,
        debtor_id=conversation.debtor_id,
        call_sid=call.sid,
        reason=reason,
    )
    said = channel_text.text(
        session,
        "utter_voice_callback_scheduled",
        language=conversation.language,
        channel=Channel.VOICE,
    )
    store_outbound(session, conversation, Channel.VOICE, said, Author.SYSTEM, address=call.address)
    return said


# -- helpers -----------------------------------------------------------------------------------


def _send_links_by_sms(
    session: Session, call: CallForm, conversation: Conversation, urls: list[str]
) -> bool:
    sent = False
    for url in urls:
        text = channel_text.text(
            session, "utter_link_sms", language=conversation.language, channel=Channel.SMS, url=url
        )
        sent = _send_sms(session, call, conversation, text, reason="link") or sent
    return sent


def _send_sms(
    session: Session, call: CallForm, conversation: Conversation, text: str, *, reason: str
) -> bool:
    """Text the caller's number; a refusal (opted out, bad number) must not break the call."""
    if call.address is None:
        return False
    contact = contacts.contact_for(session, Channel.SMS, call.address) or _contact(session, call)
    if contact is None:
        return False
    try:
        get_gateway().send_text(
            session, conversation=conversation, contact=contact, text=text, author=Author.BOT
        )
    except DeliveryError as exc:
        log.warning("SMS follow-up (%s) for call %s not sent: %s", reason, call.sid, exc)
        return False
    return True


def _contact(session: Session, call: CallForm) -> Contact | None:
    if call.address is None:
        return None
    return repository.find_contact(session, Channel.VOICE, call.address)


def _call_record(
    session: Session,
    call: CallForm,
    conversation: Conversation,
    *,
    answered_by: str,
    purpose: str | None,
) -> Message:
    """One Message per call (provider_id = CallSid) for status callbacks; turns are separate."""
    record = session.scalars(select(Message).where(Message.provider_id == call.sid)).first()
    if record is None:
        record = Message(
            conversation_id=conversation.id,
            direction=Direction.OUTBOUND if call.outbound else Direction.INBOUND,
            channel=Channel.VOICE,
            author=Author.BOT if call.outbound else Author.DEBTOR,
            body="",
            address=call.address,
            provider_id=call.sid,
            status=MessageStatus.RECEIVED,
            extra={"kind": "call", "purpose": purpose},
            created_at=utcnow(),
        )
        session.add(record)
    extra = dict(record.extra or {})
    if CALL_RANK.get(str(extra.get("call_status")), -1) < CALL_RANK["in-progress"]:
        extra["call_status"] = "in-progress"  # answered; a late "ringing" callback will not undo it
    if answered_by:
        extra["answered_by"] = answered_by
    record.extra = extra
    session.flush()
    return record


def _opening_text(purpose: str | None) -> str:
    """What the assistant receives when a call starts: a reminder stage for outbound calls."""
    reminder = parse_reminder_purpose(purpose)
    if reminder is None:
        return "/greet"
    stage, discreet = reminder
    entities: dict[str, object] = {"stage": stage}
    if discreet:
        entities["discreet"] = True
    return "/EXTERNAL_reminder" + json.dumps(entities)


def gather_url(turn: int, attempt: int) -> str:
    return _url("/twilio/voice/gather", {"turn": turn, "attempt": attempt})


def _url(path: str, query: dict[str, object]) -> str:
    return get_settings().public_base_url.rstrip("/") + path + "?" + urlencode(query)
