"""Invoices, payments and how each payment is allocated to invoices and plan installments."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ColumnElement, ForeignKey, String, or_
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
    # One instalment of an e-invoice payable in parts (several due dates, each with its amount):
    # each instalment is its own row, numbered "<number> (k/n)", so that it is dunned, claimed
    # and paid only from its own due date. `instalment_of` is the document's number (BT-1).
    instalment_of: Mapped[str | None] = mapped_column(String(64), index=True)
    instalment_no: Mapped[int | None]

    debtor = relationship("Debtor")

    @property
    def balance_minor(self) -> int:
        return max(self.amount_minor - self.paid_minor, 0)

    def not_yet_due(self, today: date) -> bool:
        """An instalment whose date has not come: not owed yet, so never claimed (an ordinary
        invoice not yet due is still counted where it always was: a pre-due reminder names it)."""
        return self.instalment_of is not None and self.due_date > today


def owed_by(today: date) -> ColumnElement[bool]:
    """SQL for `not Invoice.not_yet_due(today)`: every invoice but an instalment still to come."""
    return or_(Invoice.instalment_of.is_(None), Invoice.due_date <= today)


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
