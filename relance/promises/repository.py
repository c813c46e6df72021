"""Queries for promises to pay."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import Invoice, Promise
from relance.db.models.enums import InvoiceStatus, PromiseStatus


def pending_promises(session: Session, debtor_id: int) -> list[Promise]:
    return list(
        session.scalars(
            select(Promise).where(
                Promise.debtor_id == debtor_id, Promise.status == PromiseStatus.PENDING
            )
        )
    )


def open_invoice_ids(session: Session, debtor_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Invoice.id).where(
                Invoice.debtor_id == debtor_id, Invoice.status == InvoiceStatus.OPEN
            )
        )
    )
