"""Removing conversation content and free text, shared by erasure and retention.

Messages keep what proves a contact took place (when, which channel, direction, delivery status,
provider id): that is evidence of diligence. What was said goes: body, voice transcript, the
debtor's digits, withheld texts and template variables.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import null, select, update
from sqlalchemy.orm import Session

from relance.db.models import Conversation, Handoff, LatePaymentReason, Message

ERASED = "[erased]"
# `Message.extra` keys that describe the contact, not its content.
SAFE_EXTRA_KEYS = frozenset(
    {
        "kind",
        "purpose",
        "call_status",
        "answered_by",
        "segment",
        "segments",
        "template",
        "input",
        "turn",
        "synthetic",
        "call_sid",
        "confidence",
        "content_sid",
    }
)


def safe_extra(extra: dict[str, Any] | None) -> dict[str, Any] | None:
    kept = {k: v for k, v in (extra or {}).items() if k in SAFE_EXTRA_KEYS}
    return kept or None


def conversation_ids(session: Session, debtor_id: int) -> list[int]:
    return list(session.scalars(select(Conversation.id).where(Conversation.debtor_id == debtor_id)))


def purge_messages(session: Session, debtor_id: int, *, erase_addresses: bool) -> int:
    """Empty the bodies (and transcripts) of every message of the debtor; returns how many had any.

    `erase_addresses` also removes the debtor-side phone number stored on each message. The words
    of the debtor's late-payment reasons are copies of message bodies: they go too (the category
    stays, like a dispute's reason).
    """
    session.execute(
        update(LatePaymentReason)
        .where(LatePaymentReason.debtor_id == debtor_id, LatePaymentReason.words.is_not(None))
        .values(words=None)
    )
    ids = conversation_ids(session, debtor_id)
    if not ids:
        return 0
    rows = session.execute(
        select(Message.id, Message.body, Message.extra).where(Message.conversation_id.in_(ids))
    ).all()
    touched = 0
    for message_id, body, extra in rows:
        kept = safe_extra(extra)
        changed = bool(body) or kept != extra
        if not changed and not erase_addresses:
            continue
        values: dict[str, Any] = {"body": "", "extra": kept if kept is not None else null()}
        if erase_addresses:
            values["address"] = None
        session.execute(update(Message).where(Message.id == message_id).values(**values))
        touched += int(changed)
    session.execute(
        update(Handoff)
        .where(Handoff.conversation_id.in_(ids), Handoff.details.is_not(None))
        .values(details=None)
    )
    return touched


def redact(value: Any, needles: list[str], *, free_text_keys: frozenset[str]) -> Any:
    """A JSON value with every string holding a needle, or under a free-text key, replaced."""
    if isinstance(value, dict):
        return {
            k: ERASED
            if k in free_text_keys and isinstance(v, str) and v
            else redact(v, needles, free_text_keys=free_text_keys)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, needles, free_text_keys=free_text_keys) for v in value]
    if isinstance(value, str) and any(n and n.lower() in value.lower() for n in needles):
        return ERASED
    return value


def replace_needles(text: str, needles: list[str]) -> str:
    """The text with each needle cut out (used on the admin's reason before it is audited)."""
    import re

    for needle in sorted((n for n in needles if n), key=len, reverse=True):
        text = re.sub(re.escape(needle), ERASED, text, flags=re.IGNORECASE)
    return text
