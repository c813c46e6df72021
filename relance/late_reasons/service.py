"""Record and read the debtor's reason for paying late; decide whether the policy offers a plan first.

The category comes from the debtor's words (keyword lists in categories.yml, French and English,
whatever intent the NLU chose) and, when no word gives it away, from the intent itself ("j'ai
oublié" is an oversight). Reasons are appended, never edited: the latest is the current one and
the history shows how the debtor's situation changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance import audit
from relance.db.base import utcnow
from relance.db.models import Conversation, Debtor, LatePaymentReason
from relance.errors import InvalidContent
from relance.late_reasons import CATEGORIES
from relance.nlu_normalise import fold
from relance.plans import repository as plans_repository
from relance.policy.service import active_policy

MAX_WORDS = 2000
# What an intent says on its own when the words carry no cue. An intent that is not here (a
# request for an invoice copy, say) records a reason only when the words name one.
INTENT_CATEGORIES = {"cannot_pay": "other", "forgot_to_pay": "oversight", "dispute_debt": "dispute"}


class UnknownCategory(InvalidContent):
    """A category outside the closed list (relance.late_reasons.CATEGORIES): a 422 wherever a
    caller lets a person choose it, like any refused content."""

    def __init__(self, message: str) -> None:
        super().__init__("unknown_category", message)


@lru_cache
def _keywords() -> dict[str, list[re.Pattern[str]]]:
    with (Path(__file__).parent / "categories.yml").open(encoding="utf-8") as fh:
        lists: dict[str, list[str]] = yaml.safe_load(fh)
    unknown = set(lists) - set(CATEGORIES)
    if unknown:
        raise UnknownCategory(f"categories.yml names unknown categories: {sorted(unknown)}")
    return {
        category: [re.compile(rf"(^|\W){re.escape(fold(w))}($|\W)") for w in lists[category]]
        for category in CATEGORIES
        if category in lists
    }


def classify(text: str | None, intent: str | None = None) -> str | None:
    """The category of a stated reason; None when neither the words nor the intent give one."""
    folded = fold(text or "")
    if folded:
        for category, patterns in _keywords().items():
            if any(p.search(folded) for p in patterns):
                return category
    return INTENT_CATEGORIES.get(intent or "")


@dataclass(frozen=True)
class StatedReason:
    """A debtor's message that may state a reason, with where it came from."""

    text: str
    intent: str | None = None
    conversation: Conversation | None = None
    message_id: int | None = None
    channel: str | None = None
    language: str | None = None
    identity_verified: bool = False


def record_stated(
    session: Session, debtor: Debtor, stated: StatedReason, *, actor: str = "bot"
) -> LatePaymentReason | None:
    """Classify a debtor's message and keep it as their current reason (None: it states none)."""
    category = classify(stated.text, stated.intent)
    if category is None:
        return None
    return record_reason(session, debtor, category=category, stated=stated, actor=actor)


def record_reason(
    session: Session,
    debtor: Debtor,
    *,
    category: str,
    stated: StatedReason,
    actor: str = "bot",
    source: str = "bot",
) -> LatePaymentReason:
    """Append a reason to the debtor's history and audit it (the caller commits).

    The same inbound message (a replayed turn) is recorded once: its row is returned again.
    """
    if category not in CATEGORIES:
        raise UnknownCategory(f"{category!r} is not one of {', '.join(CATEGORIES)}")
    if stated.message_id is not None:
        existing = session.scalars(
            select(LatePaymentReason).where(LatePaymentReason.message_id == stated.message_id)
        ).first()
        if existing is not None:
            return existing
    words = stated.text.strip()[:MAX_WORDS] or None
    reason = LatePaymentReason(
        debtor_id=debtor.id,
        conversation_id=stated.conversation.id if stated.conversation is not None else None,
        message_id=stated.message_id,
        category=category,
        words=words,
        channel=stated.channel,
        language=stated.language,
        identity_verified=stated.identity_verified,
        source=source,
    )
    session.add(reason)
    session.flush()
    # The words stay on the row (erased with the debtor); the trail keeps the category only.
    audit.record(
        session,
        actor=actor,
        action="late_reason.recorded",
        entity=reason,
        debtor_id=debtor.id,
        category=category,
        channel=stated.channel,
        conversation_id=reason.conversation_id,
        identity_verified=stated.identity_verified,
    )
    return reason


def history(session: Session, debtor_id: int) -> list[LatePaymentReason]:
    """Every reason the debtor gave, newest first."""
    return list(
        session.scalars(
            select(LatePaymentReason)
            .where(LatePaymentReason.debtor_id == debtor_id)
            .order_by(LatePaymentReason.id.desc())
        )
    )


def latest(session: Session, debtor_id: int) -> LatePaymentReason | None:
    rows = history(session, debtor_id)
    return rows[0] if rows else None


def latest_counts(session: Session, *, since: datetime | None = None) -> dict[str, int]:
    """Debtors per category of their latest reason (stated since `since`), every category listed."""
    newest = select(
        LatePaymentReason.debtor_id, func.max(LatePaymentReason.id).label("last_id")
    ).group_by(LatePaymentReason.debtor_id)
    if since is not None:
        newest = newest.where(LatePaymentReason.created_at >= since)
    last = newest.subquery()
    counts = dict.fromkeys(CATEGORIES, 0)
    for category, count in session.execute(
        select(LatePaymentReason.category, func.count())
        .join(last, LatePaymentReason.id == last.c.last_id)
        .group_by(LatePaymentReason.category)
    ):
        counts[category] = counts.get(category, 0) + count
    return counts


def plan_first_reason(
    session: Session, debtor: Debtor, *, now: datetime | None = None
) -> LatePaymentReason | None:
    """The reason for which the policy offers a payment plan before pressing for payment.

    That is the debtor's latest reason when its category is in the policy's
    `late_reasons.plan_first`, it was stated within `late_reasons.remember_days`, and the debtor
    has no live plan (active or waiting for a collector). None otherwise.
    """
    rules = active_policy(session).late_reasons
    reason = latest(session, debtor.id)
    if reason is None or reason.category not in rules.plan_first:
        return None
    if reason.created_at < (now or utcnow()) - timedelta(days=rules.remember_days):
        return None
    return None if plans_repository.live_plan(session, debtor.id) is not None else reason
