"""Portfolio metrics, computed from the ledger, the cases and the conversations.

Definitions (written down because every credit team means something slightly different):
- outstanding: unpaid balance of open and disputed invoices; overdue: the part past its due date.
- aging: outstanding balance by days past due (not yet due, 1-30, 31-60, 61-90, over 90).
- DSO: outstanding / invoiced over the last `dso_days` days × `dso_days` (the standard method).
- recovery rate: of the invoices that fell due unpaid (still open, or paid after their due date),
  the share of their amount collected so far.
- promise keep rate: kept / (kept + broken); pending promises are not judged yet.
- bot containment: conversations where the debtor wrote, that never needed a human (no handoff).
- late-payment reasons: debtors per category of the latest reason they gave for paying late,
  among those who gave one in the period (a debtor counts once, under their current reason).
- per-stage conversion: debtors reminded at a stage (`dunning.sent` audit events in the period),
  and the share of them who paid something within `conversion_days` after that reminder.
- a reversed payment (`relance/ledger/reversal.py`) counts as no payment in any rate; the weekly
  collections take it off in the week it came back.
All money is per currency (integer minor units); mixing currencies would be meaningless.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from relance.db.models import (
    AuditEvent,
    Conversation,
    Dispute,
    Handoff,
    Invoice,
    Message,
    Payment,
    PaymentPlan,
    Promise,
)
from relance.db.models.enums import (
    Author,
    Direction,
    DisputeStatus,
    InvoiceStatus,
    PlanStatus,
    PromiseStatus,
)
from relance.late_reasons.service import latest_counts
from relance.ledger.models import InstallmentCharge
from relance.ledger.service import standing

AGING_BUCKETS = ("Not due", "1–30 days", "31–60 days", "61–90 days", "90+ days")
OUTSTANDING_STATUSES = (InvoiceStatus.OPEN, InvoiceStatus.DISPUTED)


@dataclass
class StageConversion:
    stage: str
    contacted: int
    paid: int

    @property
    def rate(self) -> float | None:
        return self.paid / self.contacted if self.contacted else None


@dataclass
class Dashboard:
    as_of: date
    currency: str
    outstanding_minor: int
    overdue_minor: int
    overdue_invoices: int
    aging: list[tuple[str, int]]
    dso_days: float | None
    recovery_rate: float | None
    recovered_minor: int
    fell_due_minor: int
    promises: dict[str, int]
    promise_keep_rate: float | None
    disputes_open: int
    disputed_minor: int
    conversations: int
    contained: int
    stages: list[StageConversion] = field(default_factory=list)
    weekly_collections: list[tuple[date, int]] = field(default_factory=list)
    late_reasons: dict[str, int] = field(default_factory=dict)  # category -> debtors
    # Resolutions (payment, plan, promise, dispute) in the period, and those reached with no
    # collector message to the debtor before them (`self_service`).
    resolutions: int = 0
    self_served: int = 0
    # Plans agreed in the period (active, completed or broken) and those completed.
    plans_agreed: int = 0
    plans_completed: int = 0
    # SEPA debits of the period whose outcome is known, and those that failed (at once or late).
    debits_settled: int = 0
    debits_failed: int = 0

    @property
    def late_reasons_total(self) -> int:
        return sum(self.late_reasons.values())

    @property
    def self_service_rate(self) -> float | None:
        return self.self_served / self.resolutions if self.resolutions else None

    @property
    def plan_completion_rate(self) -> float | None:
        return self.plans_completed / self.plans_agreed if self.plans_agreed else None

    @property
    def debit_failure_rate(self) -> float | None:
        return self.debits_failed / self.debits_settled if self.debits_settled else None

    @property
    def containment_rate(self) -> float | None:
        return self.contained / self.conversations if self.conversations else None


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


def currencies(session: Session) -> list[str]:
    found = list(session.scalars(select(Invoice.currency).distinct().order_by(Invoice.currency)))
    return found or ["EUR"]


def aging_bucket(days_late: int) -> int:
    if days_late <= 0:
        return 0
    if days_late <= 30:
        return 1
    if days_late <= 60:
        return 2
    if days_late <= 90:
        return 3
    return 4


def compute(
    session: Session,
    *,
    currency: str = "EUR",
    as_of: date | None = None,
    dso_days: int = 90,
    period_days: int = 90,
    conversion_days: int = 14,
    weeks: int = 12,
) -> Dashboard:
    today = as_of or datetime.now(UTC).date()

    # Ledger: outstanding, overdue, aging (one pass over open balances).
    aging = [0] * len(AGING_BUCKETS)
    outstanding = overdue = overdue_count = 0
    for due_date, amount, paid in session.execute(
        select(Invoice.due_date, Invoice.amount_minor, Invoice.paid_minor).where(
            Invoice.currency == currency, Invoice.status.in_(OUTSTANDING_STATUSES)
        )
    ):
        balance = max(amount - paid, 0)
        if not balance:
            continue
        outstanding += balance
        days_late = (today - due_date).days
        aging[aging_bucket(days_late)] += balance
        if days_late > 0:
            overdue += balance
            overdue_count += 1

    invoiced = (
        session.scalar(
            select(func.coalesce(func.sum(Invoice.amount_minor), 0)).where(
                Invoice.currency == currency,
                Invoice.status != InvoiceStatus.CANCELLED,
                Invoice.issue_date > today - timedelta(days=dso_days),
                Invoice.issue_date <= today,
            )
        )
        or 0
    )
    dso = round(outstanding / invoiced * dso_days, 1) if invoiced else None

    # Recovery: invoices that fell due unpaid.
    fell_due = recovered = 0
    for due_date, amount, paid, paid_at in session.execute(
        select(Invoice.due_date, Invoice.amount_minor, Invoice.paid_minor, Invoice.paid_at).where(
            Invoice.currency == currency,
            Invoice.status != InvoiceStatus.CANCELLED,
            Invoice.due_date < today,
        )
    ):
        paid_on_time = paid >= amount and paid_at is not None and paid_at.date() <= due_date
        if paid_on_time:
            continue
        fell_due += amount
        recovered += min(paid, amount)
    recovery = recovered / fell_due if fell_due else None

    promises = {status.value: 0 for status in PromiseStatus}
    for status, count in session.execute(
        select(Promise.status, func.count(Promise.id))
        .where(Promise.currency == currency)
        .group_by(Promise.status)
    ):
        promises[status] = count
    judged = promises.get(PromiseStatus.KEPT, 0) + promises.get(PromiseStatus.BROKEN, 0)
    keep_rate = promises.get(PromiseStatus.KEPT, 0) / judged if judged else None

    disputes_open = (
        session.scalar(select(func.count(Dispute.id)).where(Dispute.status == DisputeStatus.OPEN))
        or 0
    )
    disputed = (
        session.scalar(
            select(func.coalesce(func.sum(Invoice.amount_minor - Invoice.paid_minor), 0))
            .select_from(Dispute)
            .join(Invoice, Dispute.invoice_id == Invoice.id)
            .where(Dispute.status == DisputeStatus.OPEN, Invoice.currency == currency)
        )
        or 0
    )

    # Containment: conversations where the debtor wrote, with and without any handoff.
    talked = (
        select(Message.conversation_id).where(Message.direction == Direction.INBOUND).distinct()
    )
    conversations = (
        session.scalar(select(func.count(Conversation.id)).where(Conversation.id.in_(talked))) or 0
    )
    handed = (
        session.scalar(
            select(func.count(distinct(Handoff.conversation_id))).where(
                Handoff.conversation_id.in_(talked)
            )
        )
        or 0
    )

    since = _start_of(today - timedelta(days=period_days))
    resolutions, self_served = self_service(session, since=since)
    plans_agreed, plans_completed = plan_completion(session, since=since)
    debits_settled, debits_failed = debit_failures(session, since=since)
    return Dashboard(
        as_of=today,
        currency=currency,
        outstanding_minor=outstanding,
        overdue_minor=overdue,
        overdue_invoices=overdue_count,
        aging=list(zip(AGING_BUCKETS, aging, strict=True)),
        dso_days=dso,
        recovery_rate=recovery,
        recovered_minor=recovered,
        fell_due_minor=fell_due,
        promises=promises,
        promise_keep_rate=keep_rate,
        disputes_open=disputes_open,
        disputed_minor=disputed,
        conversations=conversations,
        contained=conversations - handed,
        stages=stage_conversion(session, today, period_days, conversion_days),
        weekly_collections=weekly_collections(session, currency, today, weeks),
        late_reasons=latest_counts(session, since=_start_of(today - timedelta(days=period_days))),
        resolutions=resolutions,
        self_served=self_served,
        plans_agreed=plans_agreed,
        plans_completed=plans_completed,
        debits_settled=debits_settled,
        debits_failed=debits_failed,
    )


AGREED_PLANS = (PlanStatus.ACTIVE, PlanStatus.COMPLETED, PlanStatus.BROKEN)


def plan_completion(session: Session, *, since: datetime) -> tuple[int, int]:
    """(agreed, completed) among the plans created since `since`: a plan waiting for approval,
    rejected or cancelled was never agreed and does not count."""
    rows = session.execute(
        select(PaymentPlan.status, func.count(PaymentPlan.id))
        .where(
            PaymentPlan.created_at >= since,
            PaymentPlan.status.in_(AGREED_PLANS),
        )
        .group_by(PaymentPlan.status)
    ).all()
    counts = {status: int(n) for status, n in rows}
    return sum(counts.values()), counts.get(PlanStatus.COMPLETED, 0)


def debit_failures(session: Session, *, since: datetime) -> tuple[int, int]:
    """(settled, failed) among the SEPA debits made since `since` whose outcome is known: a
    debit still `processing` is neither; one that succeeded and was returned later is failed,
    unless its money came back (a dispute closed `won`: `reinstated`), which counts as settled;
    so does one the creditor refunded later (`refunded`): the bank did pay it."""
    rows = session.execute(
        select(InstallmentCharge.status, func.count(InstallmentCharge.id))
        .where(
            InstallmentCharge.kind == "sepa_debit",
            InstallmentCharge.created_at >= since,
            InstallmentCharge.status.in_(("succeeded", "failed", "reinstated", "refunded")),
        )
        .group_by(InstallmentCharge.status)
    ).all()
    counts = {status: int(n) for status, n in rows}
    return sum(counts.values()), counts.get("failed", 0)


def self_service(session: Session, *, since: datetime) -> tuple[int, int]:
    """(resolutions, self-served) since `since`: each payment, plan, promise or dispute counts
    once, self-served when no collector had written to that debtor before it (the assistant and
    the portal alone led there)."""
    events: list[tuple[int, datetime]] = []
    for model, moment, *conditions in (
        (Payment, Payment.received_at, standing()),  # a reversed payment resolved nothing
        # a plan counts once agreed, as in plan_completion: one waiting for a collector's
        # approval, rejected or cancelled resolved nothing
        (PaymentPlan, PaymentPlan.created_at, PaymentPlan.status.in_(AGREED_PLANS)),
        (Promise, Promise.created_at),
        (Dispute, Dispute.created_at),
    ):
        events += [
            (debtor_id, at)
            for debtor_id, at in session.execute(
                select(model.debtor_id, moment).where(moment >= since, *conditions)
            ).all()
        ]
    if not events:
        return 0, 0
    first_collector: dict[int | None, datetime] = {
        debtor_id: at
        for debtor_id, at in session.execute(
            select(Conversation.debtor_id, func.min(Message.created_at))
            .join(Message, Message.conversation_id == Conversation.id)
            .where(Message.author == Author.COLLECTOR, Conversation.debtor_id.is_not(None))
            .group_by(Conversation.debtor_id)
        )
    }
    served = sum(
        1
        for debtor_id, at in events
        if debtor_id not in first_collector or first_collector[debtor_id] > at
    )
    return len(events), served


def stage_conversion(
    session: Session, today: date, period_days: int, conversion_days: int
) -> list[StageConversion]:
    """Per stage, in the order stages were first used: debtors reminded, and who paid after."""
    since = _start_of(today - timedelta(days=period_days))
    first_contact: dict[str, dict[int, datetime]] = defaultdict(dict)
    order: list[str] = []
    for at, debtor_id, details in session.execute(
        select(AuditEvent.at, AuditEvent.debtor_id, AuditEvent.details)
        .where(AuditEvent.action == "dunning.sent", AuditEvent.at >= since)
        .order_by(AuditEvent.at)
    ):
        stage = (details or {}).get("stage")
        if not stage or debtor_id is None:
            continue
        if stage not in first_contact:
            order.append(stage)
        first_contact[stage].setdefault(debtor_id, at)
    debtor_ids = {d for contacts in first_contact.values() for d in contacts}
    payments: dict[int, list[datetime]] = defaultdict(list)
    if debtor_ids:
        for debtor_id, received_at in session.execute(
            select(Payment.debtor_id, Payment.received_at).where(
                Payment.debtor_id.in_(debtor_ids), Payment.received_at >= since, standing()
            )
        ):
            payments[debtor_id].append(received_at)
    window = timedelta(days=conversion_days)
    result = []
    for stage in order:
        contacts = first_contact[stage]
        paid = sum(
            1
            for debtor_id, at in contacts.items()
            if any(at <= p <= at + window for p in payments.get(debtor_id, []))
        )
        result.append(StageConversion(stage, len(contacts), paid))
    return result


def weekly_collections(
    session: Session, currency: str, today: date, weeks: int
) -> list[tuple[date, int]]:
    """Money received per ISO week (Monday), oldest first, the current week last; what came back
    of a payment later is taken off in the week it came back (its own week is never rewritten)."""
    this_monday = today - timedelta(days=today.weekday())
    first_monday = this_monday - timedelta(weeks=weeks - 1)
    totals = {first_monday + timedelta(weeks=i): 0 for i in range(weeks)}
    since = _start_of(first_monday)
    moves: list[tuple[int, datetime]] = [
        (amount, received_at)
        for amount, received_at in session.execute(
            select(Payment.amount_minor, Payment.received_at).where(
                Payment.currency == currency, Payment.received_at >= since
            )
        )
    ] + [
        (-amount, reversed_at)
        for amount, reversed_at in session.execute(
            select(Payment.reversed_minor, Payment.reversed_at).where(
                Payment.currency == currency, Payment.reversed_at >= since
            )
        )
        if reversed_at is not None
    ]
    for amount, at in moves:
        day = at.date()
        monday = day - timedelta(days=day.weekday())
        if monday in totals:
            totals[monday] += amount
    return sorted(totals.items())
