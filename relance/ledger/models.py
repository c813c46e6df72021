"""A card the debtor agreed to keep on file, so later installments can be charged off-session."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
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


class PaymentReview(TimestampMixin, Base):
    """Money received that does not match what its payment link asked for, waiting for a person.

    A signed provider event paid 1 USD against a 7,970.46 EUR link, or named another debtor than
    the link's (issue 17.3). The payment row is kept (money is never lost) but allocated to nothing,
    the link stays open, and a collector decides: apply it to the debtor's account or close it
    (refunded, sent back) with a note.
    """

    __tablename__ = "payment_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(
        ForeignKey("payments.id", ondelete="CASCADE"), unique=True
    )
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    payment_link_id: Mapped[int | None] = mapped_column(ForeignKey("payment_links.id"))
    # amount | currency | debtor: what differed from the link (or the installment).
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    expected_minor: Mapped[int | None]
    expected_currency: Mapped[str | None] = mapped_column(String(3))
    expected_debtor_id: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    resolution: Mapped[str | None] = mapped_column(String(16))  # applied | closed
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    resolved_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)
