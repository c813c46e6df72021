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
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.compliance.profiles import profile_for, whole_hours
from relance.compliance.windows import day_block, zone
from relance.db.models import Conversation, Debtor, DunningAction, Message, Payment
from relance.db.models.enums import Direction
from relance.ledger.service import standing

PAYMENT = "payment"
MIN_EVENTS = 30  # fewer than this and the peak is noise: no best hour
LOOKBACK = timedelta(days=90)


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
        .where(Payment.received_at >= since, standing())
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


def _best_from_histogram(histogram: tuple[int, ...], allowed: list[int]) -> int | None:
    if sum(histogram) < MIN_EVENTS:
        return None
    return best_hour((h for h in range(24) for _ in range(histogram[h])), allowed)


def schedule_best_times(session: Session, run_id: int, *, now: datetime) -> int:
    """Move this run's new contact actions (messages, calls) to the learned best hour of their segment and channel,
    today or tomorrow, when that hour lies inside the debtor's legal contact window (the
    dispatcher still checks every rule at the moment of the send). Returns the actions moved."""
    learned = {(b.segment, b.channel): b.histogram for b in learn(session, since=now - LOOKBACK)}
    if not learned:
        return 0
    rows = session.execute(
        select(DunningAction, Debtor.segment, Debtor.timezone, Debtor.jurisdiction)
        .join(Debtor, Debtor.id == DunningAction.debtor_id)
        .where(
            DunningAction.run_id == run_id,
            DunningAction.status == "planned",
            DunningAction.kind == "contact",
            DunningAction.next_attempt_at.is_(None),
        )
    ).all()
    moved = 0
    for action, segment, tz, jurisdiction in rows:
        histogram = learned.get((segment, action.channel or ""))
        if histogram is None:
            continue
        profile = profile_for(jurisdiction)
        hour = _best_from_histogram(histogram, whole_hours(profile))
        if hour is None:
            continue
        local_now = now.astimezone(zone(tz))
        for days in (0, 1):
            day = local_now.date() + timedelta(days=days)
            at = datetime.combine(day, time(hour), tzinfo=zone(tz))
            if at >= local_now and day_block(profile, day) is None:
                action.next_attempt_at = at.astimezone(UTC)
                moved += 1
                break
    return moved
