"""A payment the debtor's bank takes back: a dispute (Stripe `charge.dispute.*`).

For SEPA Direct Debit, Stripe represents a debtor's refund request (up to eight weeks after the
debit, thirteen months if unauthorised) as a dispute that cannot be contested: the money is gone
when it is opened. So a dispute on a `sepa_debit` payment is a late failure and takes the same
path (`charges.failed`: the payment reversed, a `charge_failed` task, a message with a link; a
promise the payment kept is pending again and the follow-up pass breaks it past its date).

A card dispute can be won: the payment stands until Stripe closes the dispute. Opening it gives
collectors a `payment_disputed` task; `lost` reverses the payment (the task stays open: the
debtor charged back money they owed), `won` or a closed warning closes the task.

Each step is idempotent on the dispute id as well as on the event id (the webhook's claim): the
reversal happens once, and one task is opened per dispute.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance import audit
from relance.db.models import Payment, Task
from relance.db.models.enums import TaskStatus
from relance.followups import charges
from relance.followups.common import followup_task
from relance.ledger.models import InstallmentCharge
from relance.ledger.reversal import reverse_payment

SEPA = "sepa_debit"
DISPUTED = "payment_disputed"
CLOSED_STATUSES = ("won", "lost", "warning_closed", "prevented")
OPEN_STATUSES = (
    "warning_needs_response",
    "warning_under_review",
    "needs_response",
    "under_review",
)


@dataclass(frozen=True)
class ChargeDispute:
    """What a provider says of a dispute: its id, status, reason and disputed amount."""

    ref: str
    status: str
    reason: str
    amount_minor: int


def opened(session: Session, payment: Payment, dispute: ChargeDispute, *, actor: str) -> str:
    """A dispute was opened on `payment`: a SEPA debit is reversed at once, a card one waits."""
    audit.record(
        session,
        actor=actor,
        action="payment.disputed",
        entity=payment,
        debtor_id=payment.debtor_id,
        dispute_ref=dispute.ref,
        status=dispute.status,
        reason=dispute.reason,
        amount_minor=dispute.amount_minor,
        method=payment.method,
    )
    if payment.method == SEPA:
        return (
            "debit_returned" if _returned(session, payment, dispute, actor) else "already_reversed"
        )
    if _task(session, payment, dispute) is not None:
        return "dispute_task_exists"
    followup_task(
        session,
        payment.debtor_id,
        DISPUTED,
        payment_id=payment.id,
        dispute_ref=dispute.ref,
        dispute_reason=dispute.reason,
        amount_minor=dispute.amount_minor,
        currency=payment.currency,
        partial=dispute.amount_minor != payment.amount_minor,
    )
    return "dispute_task_opened"


def closed(session: Session, payment: Payment, dispute: ChargeDispute, *, actor: str) -> str:
    """Stripe closed the dispute: `lost` takes the money back out of the ledger; otherwise the
    money stays and the collectors' task is done."""
    task = _task(session, payment, dispute)
    audit.record(
        session,
        actor=actor,
        action="payment.dispute_closed",
        entity=payment,
        debtor_id=payment.debtor_id,
        dispute_ref=dispute.ref,
        status=dispute.status,
        task_id=task.id if task is not None else None,
    )
    if task is not None:
        task.details = {**task.details, "outcome": dispute.status}
    if dispute.status == "lost":
        if payment.method == SEPA:
            returned = _returned(session, payment, dispute, actor)
            return "debit_returned" if returned else "already_reversed"
        reversed_now = reverse_payment(
            session, payment, reason=f"dispute_lost:{dispute.reason}", actor=actor
        )
        return "payment_reversed" if reversed_now else "already_reversed"
    if task is not None:
        task.status = TaskStatus.DONE
    return "dispute_closed"


def _returned(session: Session, payment: Payment, dispute: ChargeDispute, actor: str) -> bool:
    """A SEPA debit taken back: the late-failure path of its installment charge, else the
    reversal alone. False when it was already reversed (a return, an earlier event)."""
    code = f"dispute:{dispute.reason}"
    charge = session.scalars(
        select(InstallmentCharge).where(InstallmentCharge.provider_ref == payment.provider_ref)
    ).first()
    if charge is not None:
        return charges.failed(
            session, charge, code=code, message=f"dispute {dispute.ref}", actor=actor
        )
    return reverse_payment(session, payment, reason=code, actor=actor)


def _task(session: Session, payment: Payment, dispute: ChargeDispute) -> Task | None:
    """The collectors' task this dispute opened, if any."""
    tasks = session.scalars(
        select(Task).where(Task.debtor_id == payment.debtor_id, Task.kind == "followup")
    )
    return next(
        (
            t
            for t in tasks
            if (t.details or {}).get("reason") == DISPUTED
            and (t.details or {}).get("dispute_ref") == dispute.ref
        ),
        None,
    )
