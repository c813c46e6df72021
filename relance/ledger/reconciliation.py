""" "I already paid": pause reminders and ask a person to find the money.

The bot's action calls `open_reconciliation_task`. Dunning on the debtor's open invoices pauses
for a few days, so nobody is chased for money that may already be on our account; the task is
closed by the ledger when the payment shows up, or by a collector.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance import audit
from relance.db.base import utcnow
from relance.db.models import Invoice, Task
from relance.db.models.enums import InvoiceStatus, TaskStatus

RECONCILIATION = "reconciliation"
PAUSE_DAYS = 7


def open_reconciliation_task(
    session: Session,
    *,
    debtor_id: int,
    claimed_date: date | str | None = None,
    reference: str | None = None,
    amount_minor: int | None = None,
    method: str | None = None,
    source: str = "bot",
    today: date | None = None,
) -> Task:
    """Create (or update) the debtor's open reconciliation task and pause dunning meanwhile.

    Idempotent per debtor: a second claim while one is open adds to the same task.
    `task.details["pause_until"]` (ISO date) is what the bot tells the debtor
    (utter_already_paid_recorded).
    """
    today = today or utcnow().date()
    pause_until = today + timedelta(days=PAUSE_DAYS)
    claim = {
        "claimed_date": str(claimed_date) if claimed_date else None,
        "reference": reference,
        "amount_minor": amount_minor,
        "method": method,
        "source": source,
        "at": utcnow().isoformat(),
    }
    task = session.scalars(
        select(Task).where(
            Task.debtor_id == debtor_id, Task.kind == RECONCILIATION, Task.status == TaskStatus.OPEN
        )
    ).first()
    if task is None:
        task = Task(
            kind=RECONCILIATION,
            debtor_id=debtor_id,
            due_at=datetime.combine(today + timedelta(days=2), datetime.min.time(), UTC),
            details={"claims": [claim], "pause_until": pause_until.isoformat()},
        )
        session.add(task)
    else:
        task.details = {
            **(task.details or {}),
            "claims": [*task.details.get("claims", []), claim],
            "pause_until": pause_until.isoformat(),
        }
    invoices = session.scalars(
        select(Invoice).where(Invoice.debtor_id == debtor_id, Invoice.status == InvoiceStatus.OPEN)
    ).all()
    for invoice in invoices:
        if invoice.dunning_paused_until is None or invoice.dunning_paused_until < pause_until:
            invoice.dunning_paused_until = pause_until
    session.flush()
    audit.record(
        session,
        actor=source,
        action="reconciliation.opened",
        entity=task,
        debtor_id=debtor_id,
        paused_until=pause_until,
        invoice_ids=[i.id for i in invoices],
        **claim,
    )
    return task
