"""Best time to contact: the local hours at which debtors reply and pay, per segment and channel.

Learned from timestamps only: inbound messages (the debtor's reply, on its channel) and payments
(channel `payment`), each turned into the debtor's local hour. The best hour is the peak of the
histogram smoothed over the hour before and after (a single noisy hour does not win), among the
hours the caller allows (the legal contact window): the planner never moves a contact outside it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.compliance.windows import zone
from relance.db.models import Conversation, Debtor, Message, Payment
from relance.db.models.enums import Direction

PAYMENT = "payment"
MIN_EVENTS = 30  # fewer than this and the peak is noise: no best hour


@dataclass(frozen=True)
class BestHour:
    segment: str
    channel: str
    hour: int | None
    events: int
    histogram: tuple[int, ...]


def best_hour(hours: Iterable[int], allowed: Iterable[int] = range(24)) -> int | None:
    """The allowed hour with the most events in it and its two neighbours (circular)."""
    counts = Counter(hours)
    if sum(counts.values()) == 0:
        return None
    allowed = list(allowed)
    if not allowed:
        return None

    def smoothed(h: int) -> tuple[int, int, int]:
        around = counts[(h - 1) % 24] + counts[h] + counts[(h + 1) % 24]
        return (around, counts[h], -h)

    return max(allowed, key=smoothed)


def _local_hour(at: datetime, tz: str | None) -> int:
    return at.astimezone(zone(tz)).hour


def learn(
    session: Session, *, since: datetime, allowed: Iterable[int] = range(24)
) -> list[BestHour]:
    """Best hours per (segment, channel) from replies and payments received since `since`."""
    hours: dict[tuple[str, str], list[int]] = {}
    replies = session.execute(
        select(Debtor.segment, Message.channel, Message.created_at, Debtor.timezone)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .join(Debtor, Debtor.id == Conversation.debtor_id)
        .where(Message.direction == Direction.INBOUND, Message.created_at >= since)
    )
    for segment, channel, at, tz in replies:
        hours.setdefault((segment, channel), []).append(_local_hour(at, tz))
    payments = session.execute(
        select(Debtor.segment, Payment.received_at, Debtor.timezone)
        .join(Debtor, Debtor.id == Payment.debtor_id)
        .where(Payment.received_at >= since)
    )
    for segment, at, tz in payments:
        hours.setdefault((segment, PAYMENT), []).append(_local_hour(at, tz))
    allowed = list(allowed)
    found = []
    for (segment, channel), values in sorted(hours.items()):
        histogram = Counter(values)
        found.append(
            BestHour(
                segment,
                channel,
                best_hour(values, allowed) if len(values) >= MIN_EVENTS else None,
                len(values),
                tuple(histogram[h] for h in range(24)),
            )
        )
    return found
