"""Dunning engine state: planner runs, planned/sent actions (one per invoice and stage), skips.

`DunningAction.idempotency_key` is `<invoice_id>:<stage>` and unique: the planner inserts with
on-conflict-do-nothing and the dispatcher claims rows with a conditional update, so a stage is
sent at most once per invoice even when several planners or workers run at the same time.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from relance.db.base import Base, utcnow


class DunningRun(Base):
    """One planner run: when, for which day, what it found (counts per outcome and skip reason)."""

    __tablename__ = "dunning_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_date: Mapped[date]
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    dry_run: Mapped[bool] = mapped_column(default=False)
    policy_version: Mapped[int] = mapped_column(default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class DunningAction(Base):
    """A stage due for one invoice. Rows of one debtor and day share a `group_key`: one message."""

    __tablename__ = "dunning_actions"
    __table_args__ = (Index("ix_dunning_actions_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    invoice_id: Mapped[int] = mapped_column(
        ForeignKey("invoices.id", ondelete="CASCADE"), index=True
    )
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))  # message, call, letter, legal
    group_key: Mapped[str] = mapped_column(String(80), index=True)
    status: Mapped[str] = mapped_column(String(16), default="planned")
    priority: Mapped[float] = mapped_column(default=0.0)
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)  # candidates, in order
    channel: Mapped[str | None] = mapped_column(String(16))  # the one used (or being tried)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    # Plain column, no foreign key: the planner writes up to a row per open invoice in one run,
    # and a per-row reference check there costs more than it protects (runs are never deleted).
    run_id: Mapped[int | None]
    planned_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    letter_id: Mapped[int | None] = mapped_column(ForeignKey("letters.id", ondelete="SET NULL"))
    outcome: Mapped[str | None] = mapped_column(String(40))  # skip/block reason or error code
    detail: Mapped[str | None] = mapped_column(Text)


class DunningSkip(Base):
    """An invoice whose stage was due but not planned, and why (paid, disputed, promised...).

    Kept once per (invoice, stage, reason), with the run that first found it.
    """

    __tablename__ = "dunning_skips"
    __table_args__ = (UniqueConstraint("invoice_id", "stage", "reason"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("dunning_runs.id", ondelete="CASCADE"), index=True
    )
    invoice_id: Mapped[int] = mapped_column(
        ForeignKey("invoices.id", ondelete="CASCADE"), index=True
    )
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(32), index=True)
    detail: Mapped[str | None] = mapped_column(String(300))
