"""Undo a recorded payment whose money came back: a SEPA debit that failed after it succeeded.

A SEPA Direct Debit is reported `succeeded` when the bank has not refused it yet, and can still
fail days later (insufficient funds, account closed). The money never stayed with the creditor,
so what it paid must be owed again: each allocation is taken back from its invoice and
installment (a paid invoice reopens, a paid installment goes back to due or partial, a completed
plan becomes active), credit it created is removed, and the allocation rows are deleted so the
ledger stays balanced (an invoice's `paid_minor` is the sum of its allocations). The payment row
stays, marked reversed, with the allocations it had in the audit trail (the accounting export
reads them back: the original lines stay in the payment's period, the reversal is its own dated
negative line).

A promise this payment kept is judged again without it (`promise_met`): unmet, it is pending
again, and the follow-up pass breaks it (task, message, dunning resumed) once its date and grace
have passed. A payment held for review was never applied: reversing it removes no credit.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance import audit
from relance.db.base import utcnow
from relance.db.models import AuditEvent, Installment, Invoice, Payment, Promise
from relance.db.models.enums import InstallmentStatus, InvoiceStatus, PlanStatus, PromiseStatus
from relance.ledger.review import is_held
from relance.ledger.service import lock_debtor, promise_met
from relance.outbox.service import emit


def reverse_payment(session: Session, payment: Payment, *, reason: str, actor: str) -> bool:
    """Take the payment back out of the ledger, once; False when it was already reversed."""
    debtor = lock_debtor(session, payment.debtor_id)
    if payment.reversed_at is not None:
        return False
    taken_back = []
    for allocation in list(payment.allocations):
        if allocation.invoice_id is not None:
            invoice = session.get(Invoice, allocation.invoice_id)
            if invoice is not None:
                invoice.paid_minor -= allocation.amount_minor
                if invoice.status == InvoiceStatus.PAID and invoice.balance_minor > 0:
                    invoice.status = InvoiceStatus.OPEN
                    invoice.paid_at = None
        if allocation.installment_id is not None:
            installment = session.get(Installment, allocation.installment_id)
            if installment is not None:
                _reopen(installment, allocation.amount_minor)
        taken_back.append(
            {
                "invoice_id": allocation.invoice_id,
                "installment_id": allocation.installment_id,
                "amount_minor": allocation.amount_minor,
            }
        )
        payment.allocations.remove(allocation)
    credited = 0
    if not is_held(session, payment):  # a held payment was never applied, so it credited nothing
        credited = payment.amount_minor - sum(int(a["amount_minor"] or 0) for a in taken_back)
    if credited > 0:
        debtor.credit_minor -= credited
    payment.reversed_at = utcnow()
    payment.reversal_reason = reason[:64]
    session.flush()
    reopened = _reopen_promises(session, payment, actor)
    audit.record(
        session,
        actor=actor,
        action="payment.reversed",
        entity=payment,
        debtor_id=debtor.id,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        provider_ref=payment.provider_ref,
        reason=reason,
        allocations=taken_back,
        credit_removed_minor=max(credited, 0),
        promises_reopened=reopened,
    )
    emit(
        session,
        "payment.reversed",
        debtor_id=debtor.id,
        payment_id=payment.id,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        provider_ref=payment.provider_ref,
        reason=reason,
    )
    return True


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
