"""Imported bank statements and their lines.

Unique keys make a re-import harmless: a statement is known by (account, the bank's statement id)
and by the file's SHA-256, a line by (account, its entry key) — the bank's own reference when it
gives one, else a digest of the line. The payment a matched line records carries the line's key
as its `provider_ref` (unique in `payments`), a third guard against double application.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from relance.db.base import Base, MinorUnits, TimestampMixin


class BankStatement(TimestampMixin, Base):
    __tablename__ = "bank_statements"
    __table_args__ = (UniqueConstraint("account_iban", "statement_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    format: Mapped[str] = mapped_column(String(16))  # camt.053 | mt940
    account_iban: Mapped[str] = mapped_column(String(34))
    statement_ref: Mapped[str] = mapped_column(String(128))  # camt <Stmt><Id>, MT940 :20:/:28C:
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    filename: Mapped[str | None] = mapped_column(String(255))
    currency: Mapped[str] = mapped_column(String(3))
    entry_count: Mapped[int]
    credit_count: Mapped[int]
    matched_count: Mapped[int]
    review_count: Mapped[int]
    imported_by: Mapped[str] = mapped_column(String(128))


class BankStatementEntry(TimestampMixin, Base):
    """One credit line of a statement: matched (a payment recorded) or waiting for a person.

    `status`: matched | review | assigned (a collector named the debtor) | dismissed (not ours,
    refunded…). Debit lines are counted on the statement but not stored.
    """

    __tablename__ = "bank_statement_entries"
    __table_args__ = (UniqueConstraint("account_iban", "entry_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    statement_id: Mapped[int] = mapped_column(
        ForeignKey("bank_statements.id", ondelete="CASCADE"), index=True
    )
    account_iban: Mapped[str] = mapped_column(String(34))
    entry_key: Mapped[str] = mapped_column(String(128))
    line_no: Mapped[int]
    booking_date: Mapped[date]
    amount_minor: Mapped[MinorUnits]
    currency: Mapped[str] = mapped_column(String(3))
    bank_ref: Mapped[str | None] = mapped_column(String(128))
    payer_name: Mapped[str | None] = mapped_column(String(140))
    payer_iban: Mapped[str | None] = mapped_column(String(34), index=True)
    remittance: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    # rf | invoice_number | amount_payer | collector: why it was attributed; why not, for review.
    rule: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(300))
    debtor_id: Mapped[int | None] = mapped_column(ForeignKey("debtors.id", ondelete="SET NULL"))
    invoice_ids: Mapped[str | None] = mapped_column(String(300))  # comma-separated, paid first
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id", ondelete="SET NULL"))
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    resolved_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)
