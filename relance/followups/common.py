"""What every follow-up step shares: a payment link for a message, a collector's follow-up task,
the variables of an installment's wording. Used by the daily pass (`service.py`) and by the
outcomes of charges and debits (`charges.py`), which webhooks also reach."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from relance.db.base import utcnow
from relance.db.models import Debtor, Installment, Task
from relance.errors import PolicyViolation
from relance.ledger.ports import get_payments

log = logging.getLogger(__name__)


def link_for(
    session: Session,
    debtor: Debtor,
    purpose: str,
    *,
    amount_minor: int | None = None,
    invoice_ids: list[int] | None = None,
    installment: Installment | None = None,
) -> str | None:
    """A fresh payment link, or None when nothing is left to pay (the message still goes out).

    "Nothing left to pay" is the link service's `PolicyViolation("nothing_owed")`: a plan
    broken while its invoices are on hold (a dispute) or settled otherwise has no balance to
    link to. Left to propagate, it ended the whole pass with an error, at every run."""
    try:
        _, url = get_payments().create_link(
            session,
            debtor=debtor,
            purpose=purpose,
            amount_minor=amount_minor,
            invoice_ids=invoice_ids,
            installment=installment,
        )
    except PolicyViolation as exc:
        if exc.code != "nothing_owed":
            raise
        log.info("no %s link for debtor %s: %s", purpose, debtor.id, exc)
        return None
    except ValueError as exc:
        log.info("no %s link for debtor %s: %s", purpose, debtor.id, exc)
        return None
    return url


def followup_task(session: Session, debtor_id: int, reason: str, **details: object) -> Task:
    task = Task(
        kind="followup", debtor_id=debtor_id, due_at=utcnow(), details={"reason": reason, **details}
    )
    session.add(task)
    session.flush()
    return task


def installment_variables(inst: Installment, url: str | None = None) -> dict[str, object]:
    return {
        "amount_minor": inst.amount_minor - inst.paid_minor,
        "currency": inst.plan.currency,
        "due_date": inst.due_date.isoformat(),
        "number": inst.seq,
        "total": inst.plan.installments_count,
        "pay_url": url,
    }
