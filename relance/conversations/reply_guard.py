"""At most a few replies to one debtor message, and never the same text twice in one turn.

Rasa runs up to ten actions per user message (`max_number_of_predictions`). A policy that does
not end its turn fills them: one "en 3 fois par mois" once brought a "sorry, I did not understand"
then nine times the handoff message. The bot's rules are fixed for that case (an action that
answers ends its turn), but a debtor must never be flooded whatever the model predicts: this is
the last check before anything is stored or sent. What it drops is logged and audited, so the
team sees the dialogue fault; it is never sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from relance import audit
from relance.db.models import Conversation
from relance.rasa_client import BotMessage

log = logging.getLogger(__name__)

# The longest legitimate turn: an acknowledgement, "identity confirmed", the answer, one follow-up.
MAX_REPLIES_PER_TURN = 4


@dataclass
class Bounded:
    kept: list[BotMessage] = field(default_factory=list)
    dropped: list[BotMessage] = field(default_factory=list)


def bound_replies(messages: list[BotMessage], limit: int = MAX_REPLIES_PER_TURN) -> Bounded:
    """Keep the first `limit` messages of one turn, each text once; drop the rest.

    A message without text (a custom payload only, e.g. a voice transfer flag) is kept unless it
    repeats one already kept.
    """
    result = Bounded()
    seen_texts: set[str] = set()
    seen_custom: list[dict[str, object]] = []
    for message in messages:
        text = (message.text or "").strip()
        repeated = (text and text in seen_texts) or (
            not text and bool(message.custom) and message.custom in seen_custom
        )
        if repeated or len(result.kept) >= limit:
            result.dropped.append(message)
            continue
        result.kept.append(message)
        if text:
            seen_texts.add(text)
        if message.custom:
            seen_custom.append(message.custom)
    return result


def guard_turn(
    session: Session, conversation: Conversation, messages: list[BotMessage]
) -> list[BotMessage]:
    """`bound_replies`, with an error log and an audit event when anything was dropped."""
    bounded = bound_replies(messages)
    if bounded.dropped:
        log.error(
            "conversation %s: the assistant produced %d replies to one message; %d dropped",
            conversation.id,
            len(messages),
            len(bounded.dropped),
        )
        audit.record(
            session,
            actor="system",
            action="conversation.replies_dropped",
            entity=conversation,
            debtor_id=conversation.debtor_id,
            produced=len(messages),
            dropped=len(bounded.dropped),
            dropped_texts=[(m.text or "")[:200] for m in bounded.dropped],
        )
    return bounded.kept
