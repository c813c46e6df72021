"""Hand a conversation to a human collector (and take it back).

A handoff puts the conversation in `human` mode: the api stops forwarding the debtor's messages
to Rasa and a collector answers from the console. Vulnerability and legal signals are detected
here from keyword lists (signals.yml) so that they work the same in French and English, whatever
intent the NLU chose.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml
from sqlalchemy.orm import Session

from relance import audit
from relance.db.models import Conversation, Handoff
from relance.db.models.enums import ConversationMode
from relance.handoff import repository
from relance.nlu_normalise import fold
from relance.outbox.service import emit

PRIORITY = {"vulnerability": 3, "legal": 2, "requested": 1, "plan_approval": 1}


@lru_cache
def _signals() -> dict[str, list[str]]:
    with (Path(__file__).parent / "signals.yml").open(encoding="utf-8") as fh:
        loaded: dict[str, list[str]] = yaml.safe_load(fh)
    return loaded


def detect_signal(text: str | None) -> str | None:
    """'vulnerability', 'legal' or None. Vulnerability wins when both appear."""
    if not text:
        return None
    folded = fold(text)
    for kind in ("vulnerability", "legal"):
        if any(re.search(rf"(^|\W){re.escape(w)}($|\W)", folded) for w in _signals()[kind]):
            return kind
    return None


def create_handoff(
    session: Session,
    conversation: Conversation,
    *,
    reason: str,
    details: str | None = None,
    actor: str = "bot",
) -> Handoff:
    """Open a handoff (or raise the priority of the one already open) and switch to human mode."""
    priority = PRIORITY.get(reason, 0)
    handoff = repository.open_handoff(session, conversation.id)
    if handoff is None:
        handoff = Handoff(
            conversation_id=conversation.id, reason=reason, details=details, priority=priority
        )
        session.add(handoff)
    elif priority > handoff.priority:
        handoff.priority = priority
        handoff.reason = reason
        handoff.details = details or handoff.details
    conversation.mode = ConversationMode.HUMAN
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="handoff.opened",
        entity=handoff,
        debtor_id=conversation.debtor_id,
        reason=reason,
        priority=handoff.priority,
    )
    emit(
        session,
        "escalation",
        debtor_id=conversation.debtor_id,
        kind="collector",
        reason=reason,
        priority=handoff.priority,
    )
    return handoff


def resume_bot(session: Session, conversation: Conversation, *, actor: str = "collector") -> None:
    """The collector hands back: the assistant answers again."""
    conversation.mode = ConversationMode.BOT
    audit.record(
        session,
        actor=actor,
        action="handoff.resumed",
        entity=conversation,
        debtor_id=conversation.debtor_id,
    )


def close_handoffs(session: Session, conversation: Conversation, *, actor: str) -> int:
    """Close every open or assigned handoff of the conversation (console hand-back).

    Added by the console work: `resume_bot` switches the mode; this ends the collector's case so
    the inbox no longer lists it. Returns how many were closed.
    """
    from sqlalchemy import select

    from relance.db.base import utcnow
    from relance.db.models.enums import HandoffStatus

    closed = 0
    for handoff in session.scalars(
        select(Handoff).where(
            Handoff.conversation_id == conversation.id,
            Handoff.status.in_((HandoffStatus.OPEN, HandoffStatus.ASSIGNED)),
        )
    ):
        handoff.status = HandoffStatus.CLOSED
        handoff.closed_at = utcnow()
        audit.record(
            session,
            actor=actor,
            action="handoff.closed",
            entity=handoff,
            debtor_id=conversation.debtor_id,
        )
        closed += 1
    return closed
