"""Queries for payment plans."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import Invoice, PaymentPlan
from relance.db.models.enums import InvoiceStatus, PlanStatus


def open_invoices(session: Session, debtor_id: int) -> list[Invoice]:
    return [
        inv
        for inv in session.scalars(
            select(Invoice)
            .where(Invoice.debtor_id == debtor_id, Invoice.status == InvoiceStatus.OPEN)
            .order_by(Invoice.due_date, Invoice.id)
        )
        if inv.balance_minor > 0
    ]


def live_plans(session: Session, debtor_id: int) -> list[PaymentPlan]:
    return list(
        session.scalars(
            select(PaymentPlan).where(
                PaymentPlan.debtor_id == debtor_id,
                PaymentPlan.status.in_([PlanStatus.ACTIVE, PlanStatus.PENDING_APPROVAL]),
            )
        )
    )
