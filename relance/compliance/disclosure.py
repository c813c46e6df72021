"""The debtor is told it is talking to an automated assistant: a property of the engine, not a habit
of the templates (EU AI Act art. 50(1)).

The first outbound message of a conversation on each channel must carry the disclosure phrase
(`utter_ai_disclosure_phrase` in the wording). Whoever sends it (dunning reminder, collector,
follow-up, reply to an inbound text, opening of a call) goes through `disclose_first`: a text
without the phrase gets `utter_ai_disclosure_sentence` in front. A fixed text that cannot be
amended (the approved WhatsApp template) goes through `require`, which refuses it. Once a message
carrying the phrase has gone out on a channel, `mark_disclosed` records it on the conversation
(`Conversation.disclosed_channels`). A phone call is a conversation of its own: every call
opening is checked, whatever was said on earlier calls.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from relance.db.models import Conversation, Message
from relance.nlg.renderer import render
from relance.nlg.templates_store import active_templates

PHRASE = "utter_ai_disclosure_phrase"
SENTENCE = "utter_ai_disclosure_sentence"


class DisclosureMissing(ValueError):
    """A first message that cannot be amended does not say the assistant is automated."""


def is_disclosed(conversation: Conversation, channel: str) -> bool:
    return channel in (conversation.disclosed_channels or [])


def mark_disclosed(conversation: Conversation, channel: str) -> None:
    if not is_disclosed(conversation, channel):
        # A new list, so the JSON column is seen as changed.
        conversation.disclosed_channels = [*(conversation.disclosed_channels or []), channel]


def carries_disclosure(session: Session, conversation: Conversation, text: str) -> bool:
    return _wording(session, conversation, PHRASE, None).casefold() in text.casefold()


def disclose_first(
    session: Session, conversation: Conversation, channel: str, text: str, *, call: bool = False
) -> str:
    """`text` as it must go out: with the disclosure sentence in front if this is the first
    message on `channel` (or a call's opening, `call=True`) and it does not already say it."""
    if (not call and is_disclosed(conversation, channel)) or carries_disclosure(
        session, conversation, text
    ):
        return text
    sentence = _wording(session, conversation, SENTENCE, channel)
    if not carries_disclosure(session, conversation, sentence):
        raise DisclosureMissing(f"{SENTENCE} does not contain {PHRASE}: fix the wording")
    return f"{sentence} {text}".strip()


def disclose_replies(
    session: Session,
    conversation: Conversation,
    channel: str,
    replies: list[str],
    message_ids: list[int],
    *,
    call: bool = False,
) -> list[str]:
    """The assistant's replies to a turn, the first one disclosing if needed (its stored copy
    amended too, so the transcript shows what the debtor got); the channel is then marked."""
    if not replies and not call:
        return []  # nothing said (a collector owns the thread, an opt-out): nothing to disclose
    first = replies[0] if replies else ""
    amended = disclose_first(session, conversation, channel, first, call=call)
    if amended != first and replies and message_ids:
        stored = session.get(Message, message_ids[0])
        if stored is not None and stored.body == first:
            stored.body = amended
    mark_disclosed(conversation, channel)
    return [amended, *replies[1:]] if amended else list(replies)


def require(session: Session, conversation: Conversation, channel: str, text: str) -> None:
    """Refuse a fixed first message (a template that cannot be amended) lacking the phrase."""
    if not is_disclosed(conversation, channel) and not carries_disclosure(
        session, conversation, text
    ):
        raise DisclosureMissing(
            f"the first {channel} message does not say it comes from an automated assistant"
        )


def _wording(session: Session, conversation: Conversation, name: str, channel: str | None) -> str:
    from relance.settings import get_settings

    return render(
        active_templates(session),
        name,
        language=conversation.language,
        channel=channel,
        variables={"creditor_name": get_settings().creditor_name},
    )
