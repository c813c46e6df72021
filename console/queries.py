"""Read-side queries for the console pages: the inbox and the debtor 360."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from console.web import Page
from relance.db.models import (
    AuditEvent,
    Contact,
    Conversation,
    Debtor,
    Dispute,
    Handoff,
    Installment,
    Invoice,
    LatePaymentReason,
    Letter,
    Message,
    Payment,
    PaymentPlan,
    Promise,
    User,
)
from relance.db.models.enums import Direction, DisputeStatus, HandoffStatus, InvoiceStatus
from relance.late_reasons.service import history as late_reason_history
from relance.ledger.models import InstallmentCharge, SavedPaymentMethod

LIVE_HANDOFF = (HandoffStatus.OPEN, HandoffStatus.ASSIGNED)


@dataclass
class InboxRow:
    handoff: Handoff
    conversation: Conversation
    debtor: Debtor | None
    assignee: User | None
    unread: int
    last_text: str


@dataclass
class InboxFilters:
    status: str = ""  # "", open, assigned, mine
    reason: str = ""
    channel: str = ""
    q: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "channel": self.channel, "q": self.q}


def _inbox_query(
    filters: InboxFilters, user_id: int
) -> Select[Handoff, Conversation, Debtor | None]:
    """Live handoffs with their conversation and debtor (None: a number we do not know)."""
    query: Select[Handoff, Conversation, Debtor | None] = (
        select(Handoff, Conversation, Debtor)
        .join(Conversation, Handoff.conversation_id == Conversation.id)
        .outerjoin(Debtor, Conversation.debtor_id == Debtor.id)
        .where(Handoff.status.in_(LIVE_HANDOFF))
    )
    if filters.status in (HandoffStatus.OPEN, HandoffStatus.ASSIGNED):
        query = query.where(Handoff.status == filters.status)
    elif filters.status == "mine":
        query = query.where(Handoff.assigned_to_id == user_id)
    if filters.reason:
        query = query.where(Handoff.reason == filters.reason)
    if filters.channel:
        query = query.where(Conversation.last_channel == filters.channel)
    if filters.q:
        like = f"%{filters.q.strip().lower()}%"
        query = query.where(
            or_(
                func.lower(Debtor.name).like(like),
                func.lower(Debtor.company).like(like),
                func.lower(Debtor.customer_number).like(like),
            )
        )
    return query


def inbox(
    session: Session, filters: InboxFilters, user_id: int, page: int
) -> tuple[list[InboxRow], Page]:
    """Live handoffs, highest priority first, then longest waiting first."""
    base = _inbox_query(filters, user_id)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    pager = Page(total, page)
    rows = session.execute(
        base.order_by(Handoff.priority.desc(), Handoff.created_at.asc(), Handoff.id.asc())
        .offset(pager.offset)
        .limit(pager.size)
    ).all()
    result: list[InboxRow] = []
    for handoff, conversation, debtor in rows:
        assignee = session.get(User, handoff.assigned_to_id) if handoff.assigned_to_id else None
        last = session.scalars(
            select(Message)
            .where(Message.conversation_id == conversation.id)
            .order_by(Message.id.desc())
            .limit(1)
        ).first()
        result.append(
            InboxRow(
                handoff,
                conversation,
                debtor,
                assignee,
                unread=_unanswered(session, conversation.id),
                last_text=(last.body[:90] if last else ""),
            )
        )
    return result, pager


def _unanswered(session: Session, conversation_id: int) -> int:
    """Debtor messages since the last outbound message: what the collector has not answered."""
    last_out = (
        session.scalar(
            select(func.max(Message.id)).where(
                Message.conversation_id == conversation_id, Message.direction == Direction.OUTBOUND
            )
        )
        or 0
    )
    return (
        session.scalar(
            select(func.count(Message.id)).where(
                Message.conversation_id == conversation_id,
                Message.direction == Direction.INBOUND,
                Message.id > last_out,
            )
        )
        or 0
    )


def handoff_reasons(session: Session) -> list[str]:
    return list(session.scalars(select(Handoff.reason).distinct().order_by(Handoff.reason)))


def live_handoff(session: Session, conversation_id: int) -> Handoff | None:
    return session.scalars(
        select(Handoff)
        .where(Handoff.conversation_id == conversation_id, Handoff.status.in_(LIVE_HANDOFF))
        .order_by(Handoff.id.desc())
        .limit(1)
    ).first()


@dataclass(frozen=True)
class ChargeLine:
    """One attempt to collect an installment with a saved method, with what it was for."""

    charge: InstallmentCharge
    installment: Installment
    method: SavedPaymentMethod


@dataclass
class Debtor360:
    debtor: Debtor
    invoices: list[Invoice]
    balance_by_currency: dict[str, int]
    overdue_by_currency: dict[str, int]
    payments: list[Payment]
    promises: list[Promise]
    disputes: list[Dispute]
    plans: list[PaymentPlan]
    letters: list[Letter]
    contacts: list[Contact]
    history: list[AuditEvent] = field(default_factory=list)
    late_reasons: list[LatePaymentReason] = field(default_factory=list)  # newest first
    payment_methods: list[SavedPaymentMethod] = field(default_factory=list)  # newest first
    charges: list[ChargeLine] = field(default_factory=list)  # newest first
    # Plan instalments an open dispute holds, by instalment id: the dispute that holds each
    # (relance/plans/holds.py; not reminded, charged nor missed until it is decided).
    holds: dict[int, Dispute] = field(default_factory=dict)


def debtor_360(session: Session, debtor: Debtor) -> Debtor360:
    from datetime import date

    def by_debtor(model: Any, order: Any) -> list[Any]:
        return list(
            session.scalars(select(model).where(model.debtor_id == debtor.id).order_by(order))
        )

    invoices = by_debtor(Invoice, Invoice.due_date)
    balance: dict[str, int] = {}
    overdue: dict[str, int] = {}
    today = date.today()
    for invoice in invoices:
        if invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.DISPUTED):
            balance[invoice.currency] = balance.get(invoice.currency, 0) + invoice.balance_minor
            if invoice.due_date < today:
                overdue[invoice.currency] = overdue.get(invoice.currency, 0) + invoice.balance_minor
    history = list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.debtor_id == debtor.id)
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(30)
        )
    )
    disputes = by_debtor(Dispute, Dispute.created_at.desc())
    plans = by_debtor(PaymentPlan, PaymentPlan.created_at.desc())
    open_disputes = {d.id: d for d in disputes if d.status == DisputeStatus.OPEN}
    holds = {
        inst.id: open_disputes[inst.hold_id]
        for plan in plans
        for inst in plan.installments
        if inst.hold_id in open_disputes
    }
    return Debtor360(
        debtor=debtor,
        invoices=invoices,
        balance_by_currency=balance,
        overdue_by_currency=overdue,
        payments=by_debtor(Payment, Payment.received_at.desc()),
        promises=by_debtor(Promise, Promise.promised_date.desc()),
        disputes=disputes,
        plans=plans,
        letters=by_debtor(Letter, Letter.created_at.desc()),
        contacts=list(debtor.contacts),
        history=history,
        late_reasons=late_reason_history(session, debtor.id),
        payment_methods=by_debtor(SavedPaymentMethod, SavedPaymentMethod.id.desc()),
        charges=charge_lines(session, debtor.id),
        holds=holds,
    )


def charge_lines(session: Session, debtor_id: int, limit: int = 50) -> list[ChargeLine]:
    """The debtor's latest installment charge attempts, newest first, each with its installment
    and the card or mandate it used."""
    rows = session.execute(
        select(InstallmentCharge, Installment, SavedPaymentMethod)
        .join(Installment, Installment.id == InstallmentCharge.installment_id)
        .join(SavedPaymentMethod, SavedPaymentMethod.id == InstallmentCharge.saved_method_id)
        .where(InstallmentCharge.debtor_id == debtor_id)
        .order_by(InstallmentCharge.id.desc())
        .limit(limit)
    ).all()
    return [ChargeLine(charge, installment, method) for charge, installment, method in rows]


def transcript(session: Session, conversation_id: int, limit: int = 300) -> list[Message]:
    """The latest messages, oldest first (SMS, WhatsApp and voice turns interleaved by time)."""
    rows = list(
        session.scalars(
            select(Message)
            .where(Message.conversation_id == conversation_id)
            .order_by(Message.id.desc())
            .limit(limit)
        )
    )
    return list(reversed(rows))
