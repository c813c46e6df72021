"""Undo a recorded payment whose money came back: a SEPA debit that failed after it succeeded,
a dispute the creditor lost, a refund the creditor made (`relance/followups/refunds.py`).

A SEPA Direct Debit is reported `succeeded` when the bank has not refused it yet, and can still
fail days later (insufficient funds, account closed). The money never stayed with the creditor,
so what it paid must be owed again: each allocation is taken back from its invoice and
installment (a paid invoice reopens, a paid installment goes back to due or partial, a completed
plan becomes active, and an open dispute over it holds what it contests: `relance/plans/holds.py`),
credit it created is removed, and the allocation rows are deleted so the ledger stays balanced
(an invoice's `paid_minor` is the sum of its allocations). The payment row stays, marked
reversed, with the allocations it had in the audit trail (the accounting export reads them back:
the original lines stay in the payment's period, the reversal is its own dated negative line).

A dispute can be for part of a payment (Stripe's `dispute.amount`: part of an order, a currency
difference): only that part comes back. It is taken first from the credit the payment left (the
debtor's overpayment), then from its allocations, the latest first, each reduced or deleted: the
debts it paid are owed again by exactly that amount. `reversed_minor` says how much came back; a
payment partly reversed still stands for the rest. Each reversal names its cause (`ref`, a
dispute id) and is made once.

A promise this payment kept is judged again without the money that came back (`promise_met`):
unmet, it is pending again, and the follow-up pass breaks it (task, message, dunning resumed)
once its date and grace have passed. A payment held for review was never applied: reversing it
removes no credit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance import audit
from relance.db.base import utcnow
from relance.db.models import AuditEvent, Installment, Invoice, Payment, PaymentPlan, Promise
from relance.db.models.enums import InstallmentStatus, InvoiceStatus, PlanStatus, PromiseStatus
from relance.ledger.review import is_held
from relance.ledger.service import lock_debtor, promise_met
from relance.outbox.service import emit
from relance.plans import holds

REVERSED = "payment.reversed"


def reverse_payment(
    session: Session,
    payment: Payment,
    *,
    reason: str,
    actor: str,
    amount_minor: int | None = None,
    ref: str | None = None,
    reopen_promises: bool = True,
) -> bool:
    """Take the payment's money back out of the ledger: what is left of it, or `amount_minor` of
    it (a dispute or a refund for part of the payment). Once per `ref` (the dispute or refund
    id), never more than the payment: False when nothing was taken back (already reversed, or by
    this `ref`).

    `reopen_promises=False` for a refund: the creditor gave the money back, the debtor did keep
    their promise, and reopening it would have the follow-up pass break it and write to them."""
    debtor = lock_debtor(session, payment.debtor_id)
    left = payment.amount_minor - payment.reversed_minor
    if left <= 0 or (ref is not None and reversal_by(session, payment, ref) is not None):
        return False
    amount = left if amount_minor is None else min(amount_minor, left)
    if amount <= 0:
        return False
    credited = 0
    if not is_held(session, payment):  # a held payment was never applied, so it credited nothing
        credited = max(left - sum(a.amount_minor for a in payment.allocations), 0)
    from_credit = min(amount, credited)
    completed = _completed_plans(session, payment)
    taken_back = _take_back(session, payment, amount - from_credit)
    for plan in completed:
        if plan.status == PlanStatus.ACTIVE:
            # Running again: an open dispute over it holds what it contests of it, as it would
            # have had the plan been running when the dispute came.
            holds.hold_for_plan(session, plan, actor=actor)
    if from_credit > 0:
        debtor.credit_minor -= from_credit
    payment.reversed_minor += amount
    payment.reversed_at = utcnow()
    payment.reversal_reason = reason[:64]
    partial = payment.reversed_minor < payment.amount_minor
    session.flush()
    reopened = _reopen_promises(session, payment, actor) if reopen_promises else []
    audit.record(
        session,
        actor=actor,
        action=REVERSED,
        entity=payment,
        debtor_id=debtor.id,
        amount_minor=amount,
        payment_amount_minor=payment.amount_minor,
        partial=partial,
        ref=ref,
        currency=payment.currency,
        provider_ref=payment.provider_ref,
        reason=reason,
        allocations=taken_back,
        credit_removed_minor=from_credit,
        promises_reopened=reopened,
    )
    emit(
        session,
        REVERSED,
        debtor_id=debtor.id,
        payment_id=payment.id,
        amount_minor=amount,
        partial=partial,
        currency=payment.currency,
        provider_ref=payment.provider_ref,
        reason=reason,
    )
    return True


def reversal_by(session: Session, payment: Payment, ref: str) -> dict[str, Any] | None:
    """What the reversal named `ref` took back of this payment (its audit details), if any."""
    for event in session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == REVERSED,
            AuditEvent.entity_type == Payment.__tablename__,
            AuditEvent.entity_id == str(payment.id),
        )
    ):
        if (event.details or {}).get("ref") == ref:
            return dict(event.details or {})
    return None


def _completed_plans(session: Session, payment: Payment) -> list[PaymentPlan]:
    """The completed plans whose instalments this payment paid: taking it back runs them again."""
    plans: dict[int, PaymentPlan] = {}
    for allocation in payment.allocations:
        if allocation.installment_id is None:
            continue
        installment = session.get(Installment, allocation.installment_id)
        if installment is not None and installment.plan.status == PlanStatus.COMPLETED:
            plans[installment.plan_id] = installment.plan
    return list(plans.values())


def _take_back(session: Session, payment: Payment, amount_minor: int) -> list[dict[str, Any]]:
    """Take `amount_minor` off the payment's allocations, the latest first: each invoice and
    installment owes that part again; an allocation left at zero is deleted."""
    taken_back: list[dict[str, Any]] = []
    for allocation in sorted(payment.allocations, key=lambda a: a.id, reverse=True):
        if amount_minor <= 0:
            break
        part = min(amount_minor, allocation.amount_minor)
        if allocation.invoice_id is not None:
            invoice = session.get(Invoice, allocation.invoice_id)
            if invoice is not None:
                invoice.paid_minor -= part
                if invoice.status == InvoiceStatus.PAID and invoice.balance_minor > 0:
                    invoice.status = InvoiceStatus.OPEN
                    invoice.paid_at = None
        if allocation.installment_id is not None:
            installment = session.get(Installment, allocation.installment_id)
            if installment is not None:
                _reopen(installment, part)
        taken_back.append(
            {
                "allocation_id": allocation.id,
                "invoice_id": allocation.invoice_id,
                "installment_id": allocation.installment_id,
                "amount_minor": part,
            }
        )
        allocation.amount_minor -= part
        if allocation.amount_minor == 0:
            payment.allocations.remove(allocation)
        amount_minor -= part
    return taken_back


def _reopen(installment: Installment, amount_minor: int) -> None:
    installment.paid_minor -= amount_minor
    if installment.paid_minor < installment.amount_minor:
        installment.status = (
            InstallmentStatus.PARTIAL if installment.paid_minor > 0 else InstallmentStatus.DUE
        )
        if installment.plan.status == PlanStatus.COMPLETED:
            installment.plan.status = PlanStatus.ACTIVE


def _reopen_promises(session: Session, payment: Payment, actor: str) -> list[int]:
    """The promises this payment kept that are no longer met without it: pending again."""
    kept_by_it = {
        int(event.entity_id)
        for event in session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "promise.kept",
                AuditEvent.debtor_id == payment.debtor_id,
                AuditEvent.entity_type == Promise.__tablename__,
            )
        )
        if event.entity_id and (event.details or {}).get("payment_id") == payment.id
    }
    reopened = []
    for promise_id in sorted(kept_by_it):
        promise = session.get(Promise, promise_id)
        if promise is None or promise.status != PromiseStatus.KEPT or promise_met(session, promise):
            continue
        promise.status = PromiseStatus.PENDING
        reopened.append(promise.id)
        audit.record(
            session,
            actor=actor,
            action="promise.reopened",
            entity=promise,
            debtor_id=promise.debtor_id,
            payment_id=payment.id,
        )
    return reopened
