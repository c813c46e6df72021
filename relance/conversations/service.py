"""Handle one inbound debtor message, whatever the channel.

The order of operations is what makes the path safe:
1. the inbound message is stored and committed first, as `pending_assistant`: nothing is lost,
   even if everything after fails (the worker replays it);
2. turns of one conversation are serialised by a lock held outside any DB transaction
   (`turn_lock`, across processes), so messages are answered in order while the actions are
   free to write; the request owns its message until it is done with it, so the worker's
   replay never answers it a second time;
3. messages kept during an outage are replayed before the new one;
4. if Rasa is unreachable, or its action server is (`assistant_turn`: Rasa would answer 200
   without its actions), the messages stay `pending_assistant` and the debtor gets a holding
   reply;
5. a conversation owned by a collector is never answered by the bot.

This module commits (steps 1 and after each turn): those are the durability boundaries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from relance import audit
from relance.conversations import repository
from relance.conversations.assistant_turn import probe_from_settings, send_turn
from relance.conversations.language import guess_language
from relance.conversations.reply_guard import guard_turn
from relance.conversations.turn_lock import conversation_turn, has_live_owner, message_owner
from relance.db.base import utcnow
from relance.db.models import Conversation, Message
from relance.db.models.enums import Author, ConversationMode, Direction, MessageStatus
from relance.nlg.renderer import render
from relance.nlg.templates_store import active_templates
from relance.rasa_client import AssistantUnavailable, BotMessage, RasaClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inbound:
    channel: str  # sms, whatsapp, voice, simulator
    address: str  # E.164, or whatsapp:+E164
    body: str
    provider_id: str | None = None
    extra: dict[str, Any] | None = None


@dataclass
class TurnResult:
    status: str  # answered, holding, held_for_collector, unknown_number, opted_out
    replies: list[str] = field(default_factory=list)
    custom: list[dict[str, Any]] = field(default_factory=list)
    conversation_id: int | None = None
    debtor_id: int | None = None
    inbound_message_id: int | None = None
    reply_message_ids: list[int] = field(default_factory=list)


def handle_inbound(session: Session, rasa: RasaClient, inbound: Inbound) -> TurnResult:
    contact = repository.find_contact(session, inbound.channel, inbound.address)
    if contact is None:
        return _unknown_number(session, inbound)
    debtor = contact.debtor
    conversation = repository.conversation_for_debtor(session, debtor)
    _maybe_switch_language(conversation, inbound.body)
    message = store_inbound(session, conversation, inbound)
    result = TurnResult(
        status="answered",
        conversation_id=conversation.id,
        debtor_id=debtor.id,
        inbound_message_id=message.id,
    )
    if conversation.mode == ConversationMode.HUMAN:
        message.status = MessageStatus.HELD
        audit.record(
            session,
            actor="debtor",
            action="message.held_for_collector",
            entity=message,
            debtor_id=debtor.id,
        )
        result.status = "held_for_collector"
        if repository.first_held_since_handoff(session, conversation.id, message.id):
            _acknowledge_held(session, conversation, inbound.channel, result)
        return result

    # Durable before the assistant sees it: if anything fails from here on, the worker replays it.
    # Owned before that first commit: the worker's replay never takes a message its request is
    # still going to answer (the owner dies with this request, or with its process).
    message.status = MessageStatus.PENDING_ASSISTANT
    with message_owner(session, message.id):
        session.commit()
        _answer_turn(session, rasa, conversation, message, inbound.channel, result)
    return result


def _answer_turn(
    session: Session,
    rasa: RasaClient,
    conversation: Conversation,
    message: Message,
    channel: str,
    result: TurnResult,
) -> None:
    with conversation_turn(session, conversation.id, _turn_wait_seconds()) as owned:
        if not owned:  # another turn of this debtor is still running: answer later, in order
            _holding_reply(session, conversation, channel, result)
            session.commit()
            return
        session.refresh(conversation)
        # Kept messages first, in order, up to this one: later ones belong to their own requests.
        pending = [
            kept
            for kept in repository.pending_messages(session, conversation.id)
            if kept.id <= message.id
        ]
        session.commit()  # no transaction stays open while Rasa and the actions work
        probe = probe_from_settings()
        for kept in pending:
            if conversation.mode == ConversationMode.HUMAN:
                kept.status = MessageStatus.HELD
                continue
            try:
                bot_messages = send_turn(
                    rasa,
                    conversation.sender_id,
                    kept.body,
                    _metadata(conversation, kept),
                    probe,
                    replay=kept.id != message.id,
                )
            except AssistantUnavailable as exc:
                log.warning("assistant unavailable for conversation %s: %s", conversation.id, exc)
                _holding_reply(session, conversation, channel, result)
                session.commit()
                return
            kept.status = MessageStatus.RECEIVED
            _collect(session, conversation, channel, bot_messages, result)
            conversation.last_message_at = utcnow()
            session.commit()


@dataclass(frozen=True)
class Replay:
    """What one conversation's replay did; `assistant_down`: it stopped on an unreachable
    assistant (the replay run stops too), not on a message a live request still owns."""

    replayed: int = 0
    assistant_down: bool = False


def replay_pending(
    session: Session,
    rasa: RasaClient,
    conversation_id: int,
    deliver: Callable[[Conversation, str, list[str]], None],
) -> int:
    """Send messages kept during an outage to Rasa, oldest first; deliver the replies.

    Returns how many were replayed (see `replay_conversation`).
    """
    return replay_conversation(session, rasa, conversation_id, deliver).replayed


def replay_conversation(
    session: Session,
    rasa: RasaClient,
    conversation_id: int,
    deliver: Callable[[Conversation, str, list[str]], None],
) -> Replay:
    """Replay a conversation's abandoned messages, oldest first; deliver the replies.

    Only what nobody is answering: not while a turn of the conversation runs (the lock is tried
    once, never waited for), and not from the first message whose request is still alive (it
    answers that one and the kept ones before it itself, in order). Stops at the first failure
    so order is never broken. Replies are not stored here: `deliver` sends them (the gateway
    stores every outbound it sends). Commits after each replayed message, and holds no
    transaction while Rasa works.
    """
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or conversation.debtor is None:
        return Replay()
    replayed = 0
    with conversation_turn(session, conversation_id, 0) as owned:
        if not owned:
            return Replay()
        session.refresh(conversation)
        # Nothing may be lazy-loaded during the turn (it would open a transaction, on SQLite the
        # write lock, while the actions need the database): the metadata reads only the
        # conversation's own columns, loaded by the refresh above.
        pending = repository.pending_messages(session, conversation_id)
        session.commit()
        probe = probe_from_settings()
        for kept in pending:
            if has_live_owner(session, kept.id):
                break
            if conversation.mode == ConversationMode.HUMAN:
                kept.status = MessageStatus.HELD
                session.commit()
                continue
            try:
                bot_messages = send_turn(
                    rasa,
                    conversation.sender_id,
                    kept.body,
                    _metadata(conversation, kept),
                    probe,
                    replay=True,
                )
            except AssistantUnavailable:
                return Replay(replayed, assistant_down=True)
            kept.status = MessageStatus.RECEIVED
            result = TurnResult(status="answered")
            _collect(session, conversation, kept.channel, bot_messages, result, store=False)
            if result.replies:
                deliver(conversation, kept.channel, result.replies)
            session.commit()
            replayed += 1
    return Replay(replayed)


def _holding_reply(
    session: Session, conversation: Conversation, channel: str, result: TurnResult
) -> None:
    result.status = "holding"
    _system_reply(session, conversation, channel, result, "utter_holding_reply")


def _acknowledge_held(
    session: Session, conversation: Conversation, channel: str, result: TurnResult
) -> None:
    """Once per handoff: the debtor's message waits for a person, and the debtor is told so.

    The assistant says nothing while a collector owns the conversation; without this, a debtor
    who wrote after a handoff ("et en 6 fois ?" after a plan sent for approval) got no answer at
    all and could not tell the message had arrived.
    """
    _system_reply(session, conversation, channel, result, "utter_held_for_collector")


def _system_reply(
    session: Session, conversation: Conversation, channel: str, result: TurnResult, name: str
) -> None:
    """A reply the api itself gives (not the assistant), stored like every outbound message."""
    text = render(
        active_templates(session),
        name,
        language=conversation.language,
        channel=channel,
        variables={"creditor_name": _creditor_name()},
    )
    result.replies = [*result.replies, text]
    result.reply_message_ids.append(
        store_outbound(session, conversation, channel, text, Author.SYSTEM).id
    )


def _turn_wait_seconds() -> float:
    """How long a message waits for the debtor's previous turn before getting a holding reply."""
    from relance.settings import get_settings

    return get_settings().rasa_timeout_seconds * 2


def store_inbound(session: Session, conversation: Conversation, inbound: Inbound) -> Message:
    now = utcnow()
    message = Message(
        conversation_id=conversation.id,
        direction=Direction.INBOUND,
        channel=inbound.channel,
        author=Author.DEBTOR,
        body=inbound.body,
        address=inbound.address,
        provider_id=inbound.provider_id,
        status=MessageStatus.RECEIVED,
        extra=inbound.extra,
        created_at=now,
    )
    session.add(message)
    conversation.last_channel = inbound.channel
    conversation.last_inbound_at = now
    conversation.last_message_at = now
    session.flush()
    return message


def store_outbound(
    session: Session,
    conversation: Conversation,
    channel: str,
    body: str,
    author: str = Author.BOT,
    status: str = MessageStatus.REPLIED_INLINE,
    address: str | None = None,
) -> Message:
    message = Message(
        conversation_id=conversation.id,
        direction=Direction.OUTBOUND,
        channel=channel,
        author=author,
        body=body,
        status=status,
        address=address,
    )
    session.add(message)
    session.flush()
    return message


def _collect(
    session: Session,
    conversation: Conversation,
    channel: str,
    bot_messages: list[BotMessage],
    result: TurnResult,
    *,
    store: bool = True,
) -> None:
    for bot_message in guard_turn(session, conversation, bot_messages):
        if bot_message.custom:
            result.custom.append(bot_message.custom)
        if bot_message.text:
            result.replies.append(bot_message.text)
            if store:
                result.reply_message_ids.append(
                    store_outbound(session, conversation, channel, bot_message.text).id
                )


def _unknown_number(session: Session, inbound: Inbound) -> TurnResult:
    """Reply politely, disclose nothing, keep a trace for the collectors."""
    language = guess_language(inbound.body) or _default_language()
    audit.record(
        session,
        actor="unknown",
        action="inbound.unknown_number",
        channel=inbound.channel,
        address=inbound.address,
        provider_id=inbound.provider_id,
        body=inbound.body[:500],
    )
    text = render(
        active_templates(session),
        "utter_unknown_number",
        language=language,
        channel=inbound.channel,
        variables={"creditor_name": _creditor_name()},
    )
    return TurnResult(status="unknown_number", replies=[text])


def _maybe_switch_language(conversation: Conversation, body: str) -> None:
    guessed = guess_language(body)
    if guessed and guessed != conversation.language:
        conversation.language = guessed


def turn_metadata(conversation: Conversation, channel: str) -> dict[str, str]:
    """Who and where a turn is, as the actions read it: the metadata of a debtor message, and the
    entities of a reminder the dispatcher triggers (Rasa's trigger_intent carries no metadata;
    actions/session.py ActionSyncMessageSlots reads both into slots)."""
    values = {
        "channel": channel,
        "language": conversation.language,
        "debtor_id": str(conversation.debtor_id),
        "conversation_id": str(conversation.id),
    }
    return {k: v for k, v in values.items() if v}


def _metadata(conversation: Conversation, message: Message) -> dict[str, Any]:
    """What Rasa stores with the user turn (read by the actions; `message_id` by the replay)."""
    return {**turn_metadata(conversation, message.channel), "message_id": str(message.id)}


def _creditor_name() -> str:
    from relance.settings import get_settings

    return get_settings().creditor_name


def _default_language() -> str:
    from relance.settings import get_settings

    return get_settings().default_language
