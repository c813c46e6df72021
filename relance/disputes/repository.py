"""Queries for disputes."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import Dispute, Invoice
from relance.db.models.enums import InvoiceStatus


def open_invoices(session: Session, debtor_id: int) -> list[Invoice]:
    return list(
        session.scalars(
            select(Invoice)
            .where(Invoice.debtor_id == debtor_id, Invoice.status == InvoiceStatus.OPEN)
            .order_by(Invoice.due_date, Invoice.id)
        )
    )


def reference_taken(session: Session, reference: str) -> bool:
    return (
        session.scalars(select(Dispute.id).where(Dispute.reference == reference)).first()
        is not None
    )
