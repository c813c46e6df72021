"""Queries for payment plans."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import Invoice
from relance.db.models.enums import InvoiceStatus


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
