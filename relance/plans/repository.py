"""Queries for payment plans."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.compliance.windows import zone
from relance.db.models import Debtor, Installment, Invoice, PaymentPlan
from relance.db.models.enums import InstallmentStatus, InvoiceStatus, PlanStatus
from relance.plans import holds


def _owed_invoices(session: Session, debtor_id: int, status: InvoiceStatus) -> list[Invoice]:
    """The debtor's invoices in `status` with something left to pay, oldest due first."""
    return [
        inv
        for inv in session.scalars(
            select(Invoice)
            .where(Invoice.debtor_id == debtor_id, Invoice.status == status)
            .order_by(Invoice.due_date, Invoice.id)
        )
        if inv.balance_minor > 0
    ]


def debtor_today(session: Session, debtor_id: int) -> date:
    """Today in the debtor's time zone: an instalment falls due on the debtor's own date."""
    tz = session.scalar(select(Debtor.timezone).where(Debtor.id == debtor_id))
    return datetime.now(zone(tz)).date()


def open_invoices(
    session: Session,
    debtor_id: int,
    *,
    today: date | None = None,
    named: Collection[str] = (),
) -> list[Invoice]:
    """The debtor's open invoices with something left to pay, oldest due first: what a balance,
    a reminder, a payment link or a plan counts.

    An instalment of an invoice payable in parts is left out until its due date (the debtor's
    `today`, by default): it is not owed yet, and counting it would claim the whole invoice
    from its first date. `named` keeps the invoices a reminder is about (a pre-due reminder
    names the instalment coming due).

    An ordinary invoice not yet due is in: a plan for "what I owe" and a promise of "everything"
    are the debtor's own offer, and may cover what falls due later (paying early is allowed,
    and a plan that left it out would be followed by a reminder for it). It is no claim: what
    says the debt is due filters on the due date itself (a reminder: `reminder_invoices`; the
    balance answer: due now and later said apart; a formal notice: letters.service)."""
    today = today or debtor_today(session, debtor_id)
    return [
        inv
        for inv in _owed_invoices(session, debtor_id, InvoiceStatus.OPEN)
        if not inv.not_yet_due(today) or inv.number in named
    ]


def account_currency(session: Session, debtor_id: int) -> str | None:
    """The currency the debtor's account is kept in: that of their invoices, open ones first
    (oldest due), else any other (all disputed, paid or not yet due). None without invoices.

    What the debtor is owed and promises is said in it: a debtor whose only invoices are
    disputed or not yet due has no open balance, and "EUR" was assumed for a bill in pounds."""
    currency = session.scalars(
        select(Invoice.currency)
        .where(Invoice.debtor_id == debtor_id)
        .order_by((Invoice.status == InvoiceStatus.OPEN).desc(), Invoice.due_date, Invoice.id)
    ).first()
    return currency


def falling_due_later(session: Session, debtor_id: int, today: date) -> list[Invoice]:
    """The open invoices whose due date is after the debtor's `today`, earliest first: owed
    later, not now (an ordinary invoice due next month, an instalment still to come). The
    balance answer says them apart from what is due now, never in the amount due."""
    return list(
        session.scalars(
            select(Invoice)
            .where(
                Invoice.debtor_id == debtor_id,
                Invoice.status == InvoiceStatus.OPEN,
                Invoice.amount_minor > Invoice.paid_minor,
                Invoice.due_date > today,
            )
            .order_by(Invoice.due_date, Invoice.id)
        )
    )


def disputed_invoices(session: Session, debtor_id: int) -> list[Invoice]:
    """Invoices taken out of the balance while a dispute on them is looked into: still owed if
    the dispute is rejected, so never to be called "nothing left to pay"."""
    return _owed_invoices(session, debtor_id, InvoiceStatus.DISPUTED)


def live_plan(session: Session, debtor_id: int) -> PaymentPlan | None:
    """The debtor's plan that is running or waiting for a collector's approval, if any.

    Plans are taken over all of a debtor's open invoices, so there is at most one: a second one
    would schedule the same money twice.
    """
    return session.scalars(
        select(PaymentPlan)
        .where(
            PaymentPlan.debtor_id == debtor_id,
            PaymentPlan.status.in_([PlanStatus.ACTIVE, PlanStatus.PENDING_APPROVAL]),
        )
        .order_by(PaymentPlan.id.desc())
        .limit(1)
    ).first()


def next_installment(session: Session, debtor_id: int) -> Installment | None:
    """The earliest installment of the debtor's active plan that is not fully paid and that no
    open dispute holds, if any: what the assistant names as the next one to pay and links.

    A held instalment waits for a collector's decision on money the debtor contests (or the
    creditor gave back, `relance/plans/holds.py`); naming it as due, or sending a link for it,
    asked for that money while the follow-up pass left it alone. None when every instalment
    left is held."""
    return session.scalars(
        select(Installment)
        .join(PaymentPlan, Installment.plan_id == PaymentPlan.id)
        .where(
            PaymentPlan.debtor_id == debtor_id,
            PaymentPlan.status == PlanStatus.ACTIVE,
            Installment.status != InstallmentStatus.PAID,
            Installment.paid_minor < Installment.amount_minor,
            holds.not_held(),
        )
        .order_by(Installment.due_date, Installment.seq)
        .limit(1)
    ).first()
