"""A payment the creditor refunded from Stripe's dashboard (Stripe `refund.*`, `charge.refunded`).

The money went back to the debtor, so the ledger must stop counting it: exactly the refunded
amount of the recorded payment is reversed (`relance/ledger/reversal.py`, the path a lost dispute
takes), once per refund id; partial refunds accumulate, never beyond the payment. What it had
settled is owed again (invoices, instalments; credit it left is removed first).

A refund is usually the creditor's own decision (a goodwill gesture, a cancelled order), or a
mistake. Either way the debtor must not be dunned again automatically: each invoice it reopened
is put on hold by a dispute with the system reason `refunded` (an open dispute is what pauses
dunning, `relance/disputes/service.py`), and collectors get a `payment_refunded` task to decide
whether the debt is still owed. In the console they close that dispute: upheld, the invoice is
cancelled (not owed); rejected, it is open again and dunning resumes. A payment-plan instalment
the refund reopened is held by the same dispute, against the plan's own reminders, charges and
"missed" (`relance/plans/holds.py`). Promises the payment kept stay kept (the debtor kept
them), and an instalment charged off-session says `refunded` on its charge row, with the refund
id.

Only a refund Stripe reports `succeeded` moves money; `pending` and `requires_action` are recorded
and wait for the `refund.updated` that settles them; `failed` and `canceled` never moved money.
A refund of a payment Relance never recorded changes nothing but is kept for review (an
unmatched-refund task, once per refund id): the webhook answers 2xx, as Stripe would otherwise
retry it for days.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance import audit
from relance.db.models import Debtor, Dispute, Installment, Invoice, Payment, Task
from relance.db.models.enums import DisputeStatus, InvoiceStatus
from relance.disputes import service as disputes
from relance.followups import charges
from relance.followups.chargebacks import charge_of
from relance.followups.common import followup_task
from relance.ledger.reversal import reversal_by, reverse_payment
from relance.plans import holds

REFUNDED_TASK = "payment_refunded"
UNMATCHED_TASK = "refund_unmatched"
SUCCEEDED = "succeeded"
WAITING_STATUSES = ("pending", "requires_action")
NOT_MADE_STATUSES = ("failed", "canceled")
# Stripe's published Refund statuses.
STATUSES = (SUCCEEDED, *WAITING_STATUSES, *NOT_MADE_STATUSES)


@dataclass(frozen=True)
class Refund:
    """What a provider says of a refund: its id, status, reason (Stripe's `duplicate`,
    `fraudulent`, `requested_by_customer`..., or none) and amount."""

    ref: str
    status: str
    reason: str | None
    amount_minor: int
    currency: str


def refunded(session: Session, payment: Payment, refund: Refund, *, actor: str) -> str:
    """The creditor refunded `refund.amount_minor` of `payment`: reverse it, hold what it
    reopened for a collector, tell the charge row. Idempotent on the refund id."""
    if refund.status != SUCCEEDED:
        audit.record(
            session,
            actor=actor,
            action="payment.refund_noted",
            entity=payment,
            debtor_id=payment.debtor_id,
            refund_ref=refund.ref,
            status=refund.status,
            amount_minor=refund.amount_minor,
        )
        return "refund_pending" if refund.status in WAITING_STATUSES else "refund_not_made"
    if reversal_by(session, payment, refund.ref) is not None:
        return "already_refunded"
    reason = f"refund:{refund.reason or 'unspecified'}"
    if not reverse_payment(
        session,
        payment,
        reason=reason,
        actor=actor,
        amount_minor=refund.amount_minor,
        ref=refund.ref,
        reopen_promises=False,
    ):
        return "nothing_left_to_refund"  # already reversed in full (a lost dispute, a return)
    taken = reversal_by(session, payment, refund.ref) or {}
    parts = list(taken.get("allocations") or [])
    reopened = list(
        dict.fromkeys(int(part["invoice_id"]) for part in parts if part.get("invoice_id"))
    )
    held, installments = _hold(session, payment, parts, refund, actor)
    charge = charge_of(session, payment)
    if charge is not None:
        charges.reversed_after_success(
            session, charge, status=charges.REFUNDED, ref=refund.ref, actor=actor
        )
    task = followup_task(
        session,
        payment.debtor_id,
        REFUNDED_TASK,
        payment_id=payment.id,
        refund_ref=refund.ref,
        refund_reason=refund.reason,
        amount_minor=int(taken.get("amount_minor") or refund.amount_minor),
        currency=payment.currency,
        partial=payment.reversed_minor < payment.amount_minor,
        invoice_ids=reopened,
        installment_ids=installments,
        dispute_ids=held,
        decide="refunded by the creditor: decide whether the debt is still owed",
    )
    audit.record(
        session,
        actor=actor,
        action="payment.refunded",
        entity=payment,
        debtor_id=payment.debtor_id,
        refund_ref=refund.ref,
        reason=refund.reason,
        amount_minor=int(taken.get("amount_minor") or refund.amount_minor),
        reversed_minor=payment.reversed_minor,
        currency=payment.currency,
        invoice_ids=reopened,
        installment_ids=installments,
        dispute_ids=held,
        charge_id=charge.id if charge is not None else None,
        task_id=task.id,
    )
    return "payment_refunded"


def _hold(
    session: Session, payment: Payment, parts: list[dict[str, Any]], refund: Refund, actor: str
) -> tuple[list[int], list[int]]:
    """An open `refunded` dispute on each invoice the refund reopened (one per invoice: a second
    partial refund finds the first's), so the dunning planner skips it until a collector
    decides; an invoice that is not open (cancelled meanwhile) is left alone. Returns the ids of
    the disputes and of the plan instalments they hold.

    An instalment of a payment plan the refund reopened is held by the same dispute
    (`relance/plans/holds.py`): the plan's own reminders and charges ask for it, not the
    planner, and would otherwise go on. It is held whatever its invoice's state: money paid to
    an instalment alone (its plan's invoices settled or cancelled when it came) reopens no
    invoice, and then the dispute names the plan's first invoice, so that the hold is one
    decision in the collectors' list rather than a pause of the debtor's whole account (a plan
    that names no invoice leaves only the account to name). An instalment the debtor's open
    dispute already holds stays that dispute's, and passes to the refund's if the debtor's is
    decided first (`holds.hold`, `holds.release`): it is still listed here, the refund reopened
    it."""
    debtor = session.get(Debtor, payment.debtor_id)
    held: list[int] = []
    installments: list[int] = []
    if debtor is None:
        return held, installments
    for part in parts:
        invoice_id = int(part["invoice_id"]) if part.get("invoice_id") else None
        inst = (
            session.get(Installment, int(part["installment_id"]))
            if part.get("installment_id")
            else None
        )
        if inst is not None and invoice_id is None:
            invoice_id = next(iter(inst.plan.invoice_ids or []), None)
        invoice = session.get(Invoice, invoice_id) if invoice_id is not None else None
        if inst is None and (
            invoice is None or invoice.status not in (InvoiceStatus.OPEN, InvoiceStatus.DISPUTED)
        ):
            continue
        dispute = _open_hold(session, debtor, invoice, refund, actor)
        if dispute.id not in held:
            held.append(dispute.id)
        if inst is not None:
            holds.hold(
                session,
                inst,
                dispute,
                amount_minor=int(part["amount_minor"]),
                actor=actor,
                refund_ref=refund.ref,
            )
            if inst.id not in installments:
                installments.append(inst.id)
    return held, installments


def _open_hold(
    session: Session, debtor: Debtor, invoice: Invoice | None, refund: Refund, actor: str
) -> Dispute:
    """The open `refunded` dispute on this invoice, else a new one."""
    on_it = Dispute.invoice_id.is_(None) if invoice is None else Dispute.invoice_id == invoice.id
    existing = session.scalars(
        select(Dispute).where(
            Dispute.debtor_id == debtor.id,
            on_it,
            Dispute.status == DisputeStatus.OPEN,
            Dispute.reason == disputes.REFUNDED,
        )
    ).first()
    if existing is not None:
        return existing
    return disputes.create_dispute(
        session,
        debtor,
        reason=disputes.REFUNDED,
        details=refund.ref,  # an id the debtor can match with their bank statement
        invoice_id=invoice.id if invoice is not None else None,
        actor=actor,
    )


def unmatched(session: Session, refund: Refund, *, payment_ref: str | None, actor: str) -> str:
    """A refund of no payment Relance recorded: nothing moves, but a person sees it (a task with
    no debtor), once per refund id."""
    tasks = session.scalars(select(Task).where(Task.kind == "followup", Task.debtor_id.is_(None)))
    if any((t.details or {}).get("refund_ref") == refund.ref for t in tasks):
        return "unmatched_refund_known"
    task = Task(
        kind="followup",
        debtor_id=None,
        details={
            "reason": UNMATCHED_TASK,
            "refund_ref": refund.ref,
            "payment_ref": payment_ref,
            "status": refund.status,
            "amount_minor": refund.amount_minor,
            "currency": refund.currency,
        },
    )
    session.add(task)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="payment.refund_unmatched",
        entity=task,
        refund_ref=refund.ref,
        payment_ref=payment_ref,
        status=refund.status,
        amount_minor=refund.amount_minor,
        currency=refund.currency,
    )
    return "unmatched_refund"
