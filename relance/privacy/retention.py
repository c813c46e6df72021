"""Retention: conversation content of settled debtors is purged once it is old enough.

The creditor keeps accounting records for ten years (Code de commerce L123-22), but nothing
justifies keeping what a debtor said once the account is settled and quiet. A debtor is due when
nothing is owed or disputed, no plan or promise is live, and nothing has happened for
`RETENTION_CONVERSATION_DAYS` (no message, no payment, no invoice paid, due or dispute resolved
since). Then message bodies, voice transcripts, handoff notes and the Rasa conversation go; the
fact of each contact (time, channel, status) stays, like the accounts.

Someone not on file who wrote an e-mail gets the identity-check answer; when its first send
failed, its retry row (`reply_retries` with no message) held their address and the e-mail. A
row that ended has already dropped both (`reply_retry`); every such row created before the same
cutoff is deleted, whatever its state: nothing about a stranger outlives the retention period.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Exists, and_, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from relance import audit
from relance.db.base import utcnow
from relance.db.models import (
    Conversation,
    Debtor,
    Dispute,
    Invoice,
    Message,
    Payment,
    PaymentPlan,
    Promise,
    ReplyRetry,
)
from relance.db.models.enums import DisputeStatus, InvoiceStatus, PlanStatus, PromiseStatus
from relance.privacy import scrub, tracker
from relance.privacy.erasure import TrackerPurger
from relance.settings import Settings, get_settings

ACTION = "privacy.retention_purged"
STRANGERS_ACTION = "privacy.retention_purged_unknown_senders"


@dataclass
class RetentionReport:
    cutoff: datetime
    dry_run: bool
    debtor_ids: list[int] = field(default_factory=list)
    messages: int = 0
    tracker_events: int = 0
    unknown_sender_retries: int = 0


def due_debtors(session: Session, cutoff: datetime, limit: int | None = None) -> list[int]:
    """Settled, quiet since `cutoff`, and with conversation content still held."""

    def message_where(*conditions: ColumnElement[bool]) -> Exists:
        return exists().where(
            Message.conversation_id == Conversation.id,
            Conversation.debtor_id == Debtor.id,
            *conditions,
        )

    has_content = message_where(Message.body != "")
    owing = exists().where(
        Invoice.debtor_id == Debtor.id,
        Invoice.status.in_((InvoiceStatus.OPEN, InvoiceStatus.DISPUTED)),
        Invoice.amount_minor > Invoice.paid_minor,
    )
    recent_invoice = exists().where(
        Invoice.debtor_id == Debtor.id,
        or_(Invoice.paid_at >= cutoff, Invoice.due_date >= cutoff.date()),
    )
    live_case = or_(
        exists().where(
            Dispute.debtor_id == Debtor.id,
            or_(Dispute.status == DisputeStatus.OPEN, Dispute.resolved_at >= cutoff),
        ),
        exists().where(
            PaymentPlan.debtor_id == Debtor.id,
            PaymentPlan.status.in_((PlanStatus.ACTIVE, PlanStatus.PENDING_APPROVAL)),
        ),
        exists().where(Promise.debtor_id == Debtor.id, Promise.status == PromiseStatus.PENDING),
        exists().where(Payment.debtor_id == Debtor.id, Payment.received_at >= cutoff),
    )
    recent_talk = exists().where(
        Conversation.debtor_id == Debtor.id,
        or_(Conversation.last_message_at >= cutoff, Conversation.created_at >= cutoff),
    )
    recent_message = message_where(Message.created_at >= cutoff)
    query = (
        select(Debtor.id)
        .where(
            and_(has_content, ~owing, ~recent_invoice, ~live_case, ~recent_talk, ~recent_message)
        )
        .order_by(Debtor.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def run(
    session: Session,
    *,
    now: datetime | None = None,
    days: int | None = None,
    dry_run: bool = False,
    limit: int | None = None,
    settings: Settings | None = None,
    purge_tracker: TrackerPurger = tracker.purge_conversations,
) -> RetentionReport:
    """Purge (or, dry run, list) what is due. The caller commits."""
    settings = settings or get_settings()
    days = settings.retention_conversation_days if days is None else days
    if days < 1:
        raise ValueError("the retention period must be at least one day")
    cutoff = (now or utcnow()) - timedelta(days=days)
    report = RetentionReport(cutoff=cutoff, dry_run=dry_run)
    report.debtor_ids = due_debtors(session, cutoff, limit)
    for debtor_id in report.debtor_ids:
        if dry_run:
            report.messages += _count_content(session, debtor_id)
            continue
        purged = scrub.purge_messages(session, debtor_id, erase_addresses=False)
        senders = _senders(session, debtor_id)
        events = purge_tracker(settings, senders)
        report.messages += purged
        report.tracker_events += events
        audit.record(
            session,
            actor="system",
            action=ACTION,
            debtor_id=debtor_id,
            messages=purged,
            tracker_events=events,
            retention_days=days,
        )
    report.unknown_sender_retries = purge_unknown_sender_retries(
        session, cutoff, dry_run=dry_run, days=days
    )
    session.flush()
    return report


def purge_unknown_sender_retries(
    session: Session, cutoff: datetime, *, dry_run: bool = False, days: int
) -> int:
    """Delete (dry run: count) the retry rows of answers to unknown senders created before
    `cutoff`, whatever their state; audited with the count only."""
    old = and_(ReplyRetry.message_id.is_(None), ReplyRetry.created_at < cutoff)
    if dry_run:
        return int(session.scalar(select(func.count()).select_from(ReplyRetry).where(old)) or 0)
    ids = list(session.scalars(select(ReplyRetry.id).where(old)))
    if not ids:
        return 0
    session.execute(delete(ReplyRetry).where(ReplyRetry.id.in_(ids)))
    audit.record(
        session, actor="system", action=STRANGERS_ACTION, rows=len(ids), retention_days=days
    )
    return len(ids)


def _count_content(session: Session, debtor_id: int) -> int:
    ids = scrub.conversation_ids(session, debtor_id)
    return len(
        session.scalars(
            select(Message.id).where(Message.conversation_id.in_(ids), Message.body != "")
        ).all()
    )


def _senders(session: Session, debtor_id: int) -> Iterable[str]:
    found = set(
        session.scalars(select(Conversation.sender_id).where(Conversation.debtor_id == debtor_id))
    )
    return sorted(found | {f"debtor-{debtor_id}"})


def scheduled_run() -> dict[str, int] | None:
    """The worker's daily job: one committed unit of work, at most 500 debtors per run."""
    from relance.db.session import session_scope

    settings = get_settings()
    if settings.retention_conversation_days < 1:
        return None  # retention switched off
    with session_scope() as session:
        report = run(session, limit=500, settings=settings)
    return {
        "debtors": len(report.debtor_ids),
        "messages": report.messages,
        "tracker_events": report.tracker_events,
        "unknown_sender_retries": report.unknown_sender_retries,
    }
