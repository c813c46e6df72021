"""Invoices, payments and how each payment is allocated to invoices and plan installments."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from relance.db.base import Base, MinorUnits, TimestampMixin, utcnow
from relance.db.models.enums import InvoiceStatus


class Invoice(TimestampMixin, Base):
    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str | None] = mapped_column(String(300))
    amount_minor: Mapped[MinorUnits]
    paid_minor: Mapped[MinorUnits] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    issue_date: Mapped[date]
    due_date: Mapped[date] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(16), default=InvoiceStatus.OPEN, index=True)
    # Reminders are paused until this date (already-paid claim, promise to pay).
    dunning_paused_until: Mapped[date | None]
    paid_at: Mapped[datetime | None]
    # From an e-invoice (relance/einvoice): its terms, its late-payment mentions, the original file.
    payment_terms: Mapped[str | None] = mapped_column(String(500))
    late_payment_terms: Mapped[str | None] = mapped_column(String(500))
    document_path: Mapped[str | None] = mapped_column(String(500))

    debtor = relationship("Debtor")

    @property
    def balance_minor(self) -> int:
        return max(self.amount_minor - self.paid_minor, 0)


class Payment(TimestampMixin, Base):
    """Money received. `provider_ref` is unique so a replayed provider event records nothing twice."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    amount_minor: Mapped[MinorUnits]
    currency: Mapped[str] = mapped_column(String(3))
    method: Mapped[str] = mapped_column(String(32))  # card, transfer, sandbox, cheque...
    provider: Mapped[str] = mapped_column(String(32))  # stripe, sandbox, bank, manual
    provider_ref: Mapped[str] = mapped_column(String(128), unique=True)
    payment_link_id: Mapped[int | None] = mapped_column(ForeignKey("payment_links.id"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by: Mapped[str] = mapped_column(String(64), default="system")
    # Money that came back after it was recorded (a SEPA debit returned, a dispute lost), all of
    # it or, for a dispute of less than the payment, part of it (`reversed_minor`): that much is
    # taken back from its allocations and the credit it left (relance/ledger/reversal.py); the
    # row stays as evidence. Fully reversed, it counts nowhere a payment counts.
    reversed_at: Mapped[datetime | None]
    reversal_reason: Mapped[str | None] = mapped_column(String(64))
    reversed_minor: Mapped[MinorUnits] = mapped_column(default=0, server_default="0")

    allocations: Mapped[list[PaymentAllocation]] = relationship(
        back_populates="payment", cascade="all, delete-orphan"
    )


class PaymentAllocation(Base):
    __tablename__ = "payment_allocations"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(
        ForeignKey("payments.id", ondelete="CASCADE"), index=True
    )
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    installment_id: Mapped[int | None] = mapped_column(ForeignKey("installments.id"))
    amount_minor: Mapped[MinorUnits]

    payment: Mapped[Payment] = relationship(back_populates="allocations")
