"""Read-backs the installment-charge tests share: a charge's attempts, a balanced ledger."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from relance.db.models import PaymentAllocation
from relance.ledger.models import InstallmentCharge


def charges_of(db: Any, inst: Any) -> list[InstallmentCharge]:
    """Every charge attempt of one installment."""
    return list(
        db.scalars(select(InstallmentCharge).where(InstallmentCharge.installment_id == inst.id))
    )


def balanced(db: Any, invoice: Any) -> bool:
    """The invoice's paid amount is exactly what the payments allocated to it."""
    allocated = db.scalar(
        select(func.coalesce(func.sum(PaymentAllocation.amount_minor), 0)).where(
            PaymentAllocation.invoice_id == invoice.id
        )
    )
    return bool(invoice.paid_minor == allocated)
