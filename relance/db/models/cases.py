"""What comes out of conversations: disputes, payment plans, promises to pay, follow-up tasks."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from relance.db.base import Base, MinorUnits, TimestampMixin
from relance.db.models.enums import (
    DisputeStatus,
    InstallmentStatus,
    PlanStatus,
    PromiseStatus,
    TaskStatus,
)


class Dispute(TimestampMixin, Base):
    """A contested invoice. While open, dunning on that invoice is paused."""

    __tablename__ = "disputes"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    details: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=DisputeStatus.OPEN, index=True)
    resolution_note: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(64))


class PaymentPlan(TimestampMixin, Base):
    __tablename__ = "payment_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    total_minor: Mapped[MinorUnits]
    currency: Mapped[str] = mapped_column(String(3))
    installments_count: Mapped[int]
    frequency: Mapped[str] = mapped_column(String(16))  # weekly, biweekly, monthly
    status: Mapped[str] = mapped_column(String(20), default=PlanStatus.ACTIVE, index=True)
    invoice_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    approved_by: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)

    installments: Mapped[list[Installment]] = relationship(
        back_populates="plan", order_by="Installment.seq", cascade="all, delete-orphan"
    )


class Installment(Base):
    __tablename__ = "installments"

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(
        ForeignKey("payment_plans.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int]
    due_date: Mapped[date] = mapped_column(index=True)
    amount_minor: Mapped[MinorUnits]
    paid_minor: Mapped[MinorUnits] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16), default=InstallmentStatus.DUE)
    # The dispute that holds (or held) this instalment: the debtor's own on an invoice the plan
    # covers, or the `refunded` one a refund by the creditor opened; while it is open no
    # reminder, charge or "missed" touches the instalment (relance/plans/holds.py). The link
    # stays after the decision, as its history, until another dispute holds it.
    hold_id: Mapped[int | None] = mapped_column(
        ForeignKey("disputes.id", ondelete="SET NULL"), index=True
    )

    plan: Mapped[PaymentPlan] = relationship(back_populates="installments")


class Promise(TimestampMixin, Base):
    """A promise to pay an amount by a date; reminders pause until then, follow-up if broken."""

    __tablename__ = "promises"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    amount_minor: Mapped[MinorUnits]
    currency: Mapped[str] = mapped_column(String(3))
    promised_date: Mapped[date] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(16), default=PromiseStatus.PENDING, index=True)
    invoice_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(String(16), default="bot")  # bot, collector


class Task(TimestampMixin, Base):
    """Work for a person or for the worker: reconcile a claimed payment, call back, follow up."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)  # reconciliation, callback, ...
    debtor_id: Mapped[int | None] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"))
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.OPEN, index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class LatePaymentReason(TimestampMixin, Base):
    """Why the debtor says they pay late: a category, their own words, when and where.

    Append-only history (the latest row is the current reason). `message_id` is the inbound message
    it was read from, unique so that a replayed turn records it once.
    """

    __tablename__ = "late_payment_reasons"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="SET NULL")
    )
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), unique=True
    )
    category: Mapped[str] = mapped_column(String(32), index=True)
    words: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str | None] = mapped_column(String(16))
    language: Mapped[str | None] = mapped_column(String(8))
    identity_verified: Mapped[bool] = mapped_column(default=False)
    source: Mapped[str] = mapped_column(String(16), default="bot")  # bot, collector
