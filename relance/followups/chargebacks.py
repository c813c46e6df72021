"""A payment the debtor's bank takes back: a dispute (Stripe `charge.dispute.*`).

For SEPA Direct Debit, Stripe represents a debtor's refund request (up to eight weeks after the
debit, thirteen months if unauthorised) as a dispute that cannot be contested: the money is gone
when it is opened. So a dispute on a `sepa_debit` payment is a late failure and takes the same
path (`charges.failed`: the payment reversed, a `charge_failed` task, a message with a link; a
promise the payment kept is pending again and the follow-up pass breaks it past its date).

It can still close `won`. Stripe's SEPA Direct Debit documentation: past eight weeks the debtor
can only claim the debit was not authorised, and Stripe then sends the debtor's bank the mandate
they accepted, which "does not guarantee that the dispute can be canceled": the bank may cancel
it and the money comes back (a dispute's `won`: funds reinstated). "No appeals process" means
the creditor cannot answer it, not that it is always lost. Then the payment is recorded again:
what the dispute took back, as a new payment dated the day it came back (its reference is the
dispute id, so once), on the installment and invoices it had reopened; the `charge_failed` task
is closed with that outcome, the installment charge the dispute had failed becomes
`reinstated` with the dispute id (so the charge row, the portal, the console and the exports do
not keep saying `failed`), and each step is audit-logged.

A card dispute can be won or lost by the creditor: the payment stands until Stripe closes the
dispute. Opening it gives collectors a `payment_disputed` task; `lost` reverses the payment (the
task stays open: the debtor charged back money they owed), `won` or a closed warning closes the
task. A lost dispute on an instalment charged off-session also turns its charge row from
`succeeded` to `disputed_lost`, with the dispute id.

Stripe's Dispute object has eight published statuses: four open (`warning_needs_response`,
`warning_under_review`: an inquiry, no money taken yet; `needs_response`, `under_review`) and four
final (`won`, `lost`, `warning_closed`: an inquiry that never became a chargeback; `prevented`:
stopped by a dispute prevention service before it was filed). Each is handled wherever it comes:
a dispute created already final is decided at once (a card's `lost` opens the task and reverses
the payment; the others leave nothing to do); a status change while open
(`charge.dispute.updated`, or a `charge.dispute.closed` whose status is not final) is recorded and
noted on the collectors' task, and moves nothing in the ledger.

A dispute can be for part of the payment (Stripe's `dispute.amount`): only that part is taken
back (`relance/ledger/reversal.py`), the rest stays paid.

Each step is idempotent on the dispute id as well as on the event id (the webhook's claim): the
reversal happens once, one task is opened per dispute, a won dispute is recorded once.
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
from relance.ledger.reversal import reversal_by, reverse_payment
from relance.ledger.service import record_payment

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
    """A dispute was opened on `payment`: a SEPA debit is reversed at once, a card one waits
    (unless it arrives already decided)."""
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
    if dispute.status in CLOSED_STATUSES and dispute.status != "lost":
        # Decided for us before we heard of it (won, a closed warning, prevented): nothing was
        # taken back and there is nothing for collectors to do.
        return closed(session, payment, dispute, actor=actor)
    if payment.method == SEPA:
        return (
            "debit_returned" if _returned(session, payment, dispute, actor) else "already_reversed"
        )
    if dispute.status == "lost":
        # A card chargeback already lost: collectors must know the debtor charged it back (the
        # task stays open), and the money leaves the ledger.
        if _task(session, payment, dispute) is None:
            _open_task(session, payment, dispute)
        return closed(session, payment, dispute, actor=actor)
    if _task(session, payment, dispute) is not None:
        return "dispute_task_exists"
    _open_task(session, payment, dispute)
    return "dispute_task_opened"


def _open_task(session: Session, payment: Payment, dispute: ChargeDispute) -> None:
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


def updated(session: Session, payment: Payment, dispute: ChargeDispute, *, actor: str) -> str:
    """The dispute changed status (an inquiry escalated, evidence under review...): recorded,
    and the collectors' task shows the new status. Nothing moves in the ledger: a final status
    is acted on by `closed` (Stripe sends `charge.dispute.closed` for it)."""
    task = _task(session, payment, dispute)
    audit.record(
        session,
        actor=actor,
        action="payment.dispute_updated",
        entity=payment,
        debtor_id=payment.debtor_id,
        dispute_ref=dispute.ref,
        status=dispute.status,
        task_id=task.id if task is not None else None,
    )
    if task is not None:
        task.details = {**task.details, "dispute_status": dispute.status}
    return "dispute_updated"


def closed(session: Session, payment: Payment, dispute: ChargeDispute, *, actor: str) -> str:
    """Stripe closed the dispute: `lost` takes the disputed money back out of the ledger; a SEPA
    debit's `won` brings back what its opening took; otherwise the money stays and the
    collectors' task is done. A status that is not final (Stripe's `closed` event should not
    carry one) is only recorded, as an update: the dispute is still open."""
    if dispute.status not in CLOSED_STATUSES:
        updated(session, payment, dispute, actor=actor)
        return "dispute_still_open"
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
            session,
            payment,
            reason=f"dispute_lost:{dispute.reason}",
            actor=actor,
            amount_minor=dispute.amount_minor,
            ref=dispute.ref,
        )
        charge = charge_of(session, payment)
        if charge is not None:  # an instalment charged off-session: its row tells it too
            charges.reversed_after_success(
                session, charge, status=charges.DISPUTED_LOST, ref=dispute.ref, actor=actor
            )
        return "payment_reversed" if reversed_now else "already_reversed"
    outcome = "dispute_closed"
    if payment.method == SEPA and dispute.status == "won":
        outcome = _recorded_again(session, payment, dispute, actor, task)
    if task is not None:
        task.status = TaskStatus.DONE
    return outcome


def _returned(session: Session, payment: Payment, dispute: ChargeDispute, actor: str) -> bool:
    """A SEPA debit taken back: the late-failure path of its installment charge, else the
    reversal alone. False when it was already reversed (a return, an earlier event)."""
    code = f"dispute:{dispute.reason}"
    charge = charge_of(session, payment)
    if charge is not None:
        return charges.failed(
            session,
            charge,
            code=code,
            message=f"dispute {dispute.ref}",
            actor=actor,
            amount_minor=dispute.amount_minor,
            ref=dispute.ref,
        )
    return reverse_payment(
        session,
        payment,
        reason=code,
        actor=actor,
        amount_minor=dispute.amount_minor,
        ref=dispute.ref,
    )


def _recorded_again(
    session: Session, payment: Payment, dispute: ChargeDispute, actor: str, task: Task | None
) -> str:
    """A SEPA debit's dispute closed `won`: the bank gave back what the dispute took. It is
    recorded as a payment of that amount, referenced by the dispute id (so once), on the
    installment and invoices the reversal reopened; nobody is thanked for it."""
    taken = reversal_by(session, payment, dispute.ref)
    if taken is None:
        return "dispute_closed"  # its opening reached no payment of ours: nothing came back
    parts = taken.get("allocations") or []
    outcome = record_payment(
        session,
        debtor_id=payment.debtor_id,
        amount_minor=int(taken["amount_minor"]),
        currency=payment.currency,
        method=payment.method,
        provider=payment.provider,
        provider_ref=dispute.ref,
        invoice_ids=list(dict.fromkeys(p["invoice_id"] for p in parts if p.get("invoice_id"))),
        installment_id=next((p["installment_id"] for p in parts if p.get("installment_id")), None),
        recorded_by=actor,
        thank=False,
    )
    charge = charge_of(session, payment)
    if charge is not None:
        charges.reinstated(session, charge, dispute_ref=dispute.ref, actor=actor)
    if not outcome.created:
        return "already_recorded_again"
    if task is not None:
        task.details = {**task.details, "payment_recorded_again": outcome.payment.id}
    audit.record(
        session,
        actor=actor,
        action="payment.dispute_won",
        entity=outcome.payment,
        debtor_id=payment.debtor_id,
        dispute_ref=dispute.ref,
        reversed_payment_id=payment.id,
        amount_minor=outcome.payment.amount_minor,
        currency=payment.currency,
        task_id=task.id if task is not None else None,
    )
    return "payment_recorded_again"


def charge_of(session: Session, payment: Payment) -> InstallmentCharge | None:
    """The installment charge that collected `payment` (same PaymentIntent), if any."""
    return session.scalars(
        select(InstallmentCharge).where(InstallmentCharge.provider_ref == payment.provider_ref)
    ).first()


def _task(session: Session, payment: Payment, dispute: ChargeDispute) -> Task | None:
    """The collectors' task this dispute opened, if any: `payment_disputed` for a card,
    `charge_failed` for a SEPA debit it took back."""
    tasks = session.scalars(
        select(Task).where(Task.debtor_id == payment.debtor_id, Task.kind == "followup")
    )
    return next((t for t in tasks if (t.details or {}).get("dispute_ref") == dispute.ref), None)
