"""A card the debtor agreed to keep on file, so later installments can be charged off-session."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from relance.db.base import Base, TimestampMixin


class SavedPaymentMethod(TimestampMixin, Base):
    """Provider references only (customer + payment method ids): no card data ever reaches us."""

    __tablename__ = "saved_payment_methods"
    __table_args__ = (UniqueConstraint("provider", "payment_method_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    plan_id: Mapped[int | None] = mapped_column(
        ForeignKey("payment_plans.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(16))
    customer_ref: Mapped[str] = mapped_column(String(128))
    payment_method_ref: Mapped[str] = mapped_column(String(128))
    revoked_at: Mapped[datetime | None]
