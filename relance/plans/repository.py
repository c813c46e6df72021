"""Queries for payment plans."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import Installment, Invoice, PaymentPlan
from relance.db.models.enums import InstallmentStatus, InvoiceStatus, PlanStatus


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


def open_invoices(session: Session, debtor_id: int) -> list[Invoice]:
    return _owed_invoices(session, debtor_id, InvoiceStatus.OPEN)


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
    """The earliest installment of the debtor's active plan that is not fully paid, if any."""
    return session.scalars(
        select(Installment)
        .join(PaymentPlan, Installment.plan_id == PaymentPlan.id)
        .where(
            PaymentPlan.debtor_id == debtor_id,
            PaymentPlan.status == PlanStatus.ACTIVE,
            Installment.status != InstallmentStatus.PAID,
            Installment.paid_minor < Installment.amount_minor,
        )
        .order_by(Installment.due_date, Installment.seq)
        .limit(1)
    ).first()
