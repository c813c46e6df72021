"""Record money received, once, and apply its consequences.

`record_payment` is idempotent on the provider reference (Stripe PaymentIntent id, bank reference):
a replayed webhook, or both `checkout.session.completed` and `payment_intent.succeeded` for the
same payment, record it once. The debtor row is locked first so two payments for one debtor are
allocated one after the other (PostgreSQL row lock; SQLite serialises writers anyway).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from relance import audit
from relance.db.base import utcnow
from relance.db.models import (
    Debtor,
    Installment,
    Invoice,
    Payment,
    PaymentLink,
    PaymentPlan,
    Promise,
    Task,
)
from relance.db.models.enums import (
    InstallmentStatus,
    InvoiceStatus,
    PlanStatus,
    PromiseStatus,
    TaskStatus,
)
from relance.ledger.allocation import AllocationResult, allocate
from relance.ledger.models import PaymentReview
from relance.ledger.notify import notify_debtor
from relance.outbox.service import emit

log = logging.getLogger(__name__)
THANKS_RESPONSE = "utter_payment_thanks"
RECEIVED_EVENT = "payment.received"


@dataclass
class PaymentOutcome:
    payment: Payment
    created: bool
    held: bool = False  # recorded but waiting for review (relance/ledger/review.py), not applied
    paid_invoice_ids: list[int] = field(default_factory=list)
    credited_minor: int = 0
    kept_promise_ids: list[int] = field(default_factory=list)
    completed_plan_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Expected:
    """What a payment was asked for (by its link, or its installment); None where unknown."""

    amount_minor: int | None
    currency: str | None
    debtor_id: int | None


@dataclass(frozen=True)
class Hold:
    """A payment that differs from what was asked (`reasons`: amount, currency, debtor) is
    recorded but held for a person's review instead of being applied."""

    expected: Expected
    reasons: list[str]


def lock_debtor(session: Session, debtor_id: int) -> Debtor:
    """Serialise money movements per debtor (and refresh the row we are about to change)."""
    return session.execute(
        select(Debtor)
        .where(Debtor.id == debtor_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def standing() -> ColumnElement[bool]:
    """The payments whose money stayed: a reversed one (a SEPA debit returned, a dispute lost,
    `relance/ledger/reversal.py`) stops counting everywhere a payment counts (promises kept,
    dashboard rates, experiments' outcomes). Its row stays, as evidence. One partly reversed (a
    dispute for part of it) still counts, for what stayed (`kept_minor`)."""
    return Payment.reversed_minor < Payment.amount_minor


def kept_minor() -> ColumnElement[int]:
    """What stayed of a payment: its amount less what came back."""
    return Payment.amount_minor - Payment.reversed_minor


def find_payment(session: Session, provider_ref: str) -> Payment | None:
    return session.scalars(select(Payment).where(Payment.provider_ref == provider_ref)).first()


def record_payment(
    session: Session,
    *,
    debtor_id: int,
    amount_minor: int,
    currency: str,
    method: str,
    provider: str,
    provider_ref: str,
    payment_link: PaymentLink | None = None,
    invoice_ids: list[int] | None = None,
    installment_id: int | None = None,
    received_at: datetime | None = None,
    recorded_by: str = "system",
    thank: bool = True,
    hold: Hold | None = None,
    latest_first: bool = False,
) -> PaymentOutcome:
    """Store a payment (once per `provider_ref`), allocate it, stop dunning, thank the debtor.

    With `hold`, the payment is stored and queued for review instead: nothing is allocated, the
    link is not marked paid, nobody is thanked (issue 17.3). `latest_first` settles the named
    invoices latest due first (a credit note on an invoice payable in instalments).
    """
    debtor = lock_debtor(session, debtor_id)
    payment, created = store_payment(
        session,
        debtor,
        amount_minor=amount_minor,
        currency=currency,
        method=method,
        provider=provider,
        provider_ref=provider_ref,
        payment_link=payment_link,
        received_at=received_at,
        recorded_by=recorded_by,
    )
    if not created:
        return PaymentOutcome(payment=payment, created=False)
    if hold is not None:
        _queue_for_review(session, debtor, payment, hold, recorded_by)
        return PaymentOutcome(payment=payment, created=True, held=True)
    if payment_link is not None:
        invoice_ids = invoice_ids or list(payment_link.invoice_ids or [])
        installment_id = installment_id or payment_link.installment_id
    return apply_payment(
        session,
        debtor,
        payment,
        invoice_ids=invoice_ids,
        installment_id=installment_id,
        payment_link=payment_link,
        recorded_by=recorded_by,
        thank=thank,
        latest_first=latest_first,
    )


def _queue_for_review(
    session: Session, debtor: Debtor, payment: Payment, hold: Hold, recorded_by: str
) -> PaymentReview:
    expected = hold.expected
    review = PaymentReview(
        payment_id=payment.id,
        debtor_id=debtor.id,
        payment_link_id=payment.payment_link_id,
        reasons=list(hold.reasons),
        expected_minor=expected.amount_minor,
        expected_currency=expected.currency.upper() if expected.currency else None,
        expected_debtor_id=expected.debtor_id,
    )
    session.add(review)
    session.flush()
    audit.record(
        session,
        actor=recorded_by,
        action="payment.held_for_review",
        entity=review,
        debtor_id=debtor.id,
        payment_id=payment.id,
        provider_ref=payment.provider_ref,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        reasons=review.reasons,
        expected_minor=expected.amount_minor,
        expected_currency=review.expected_currency,
        expected_debtor_id=expected.debtor_id,
        payment_link_id=review.payment_link_id,
    )
    return review


def store_payment(
    session: Session,
    debtor: Debtor,
    *,
    amount_minor: int,
    currency: str,
    method: str,
    provider: str,
    provider_ref: str,
    payment_link: PaymentLink | None = None,
    received_at: datetime | None = None,
    recorded_by: str = "system",
) -> tuple[Payment, bool]:
    """The payment row for `provider_ref`, created unless it exists; (row, created).

    The caller holds the debtor's lock (`lock_debtor`). Nothing is allocated here.
    """
    if amount_minor <= 0:
        raise ValueError("a payment must be a positive amount")
    existing = find_payment(session, provider_ref)
    if existing is not None:
        return existing, False
    payment = Payment(
        debtor_id=debtor.id,
        amount_minor=amount_minor,
        currency=currency.upper(),
        method=method,
        provider=provider,
        provider_ref=provider_ref,
        payment_link_id=payment_link.id if payment_link is not None else None,
        received_at=received_at or utcnow(),
        recorded_by=recorded_by,
    )
    try:
        with session.begin_nested():
            session.add(payment)
            session.flush()
    except IntegrityError:
        # Another transaction recorded the same provider reference first.
        existing = find_payment(session, provider_ref)
        if existing is None:
            raise
        return existing, False
    return payment, True


def apply_payment(
    session: Session,
    debtor: Debtor,
    payment: Payment,
    *,
    invoice_ids: list[int] | None = None,
    installment_id: int | None = None,
    payment_link: PaymentLink | None = None,
    recorded_by: str = "system",
    thank: bool = True,
    latest_first: bool = False,
) -> PaymentOutcome:
    """Allocate a stored payment and apply what follows: invoices and installments settled, the
    link paid, credit, promises kept, reconciliation tasks closed, the debtor thanked."""
    amount_minor, currency = payment.amount_minor, payment.currency
    installment = session.get(Installment, installment_id) if installment_id else None
    result = allocate(
        session,
        payment,
        invoice_ids=invoice_ids,
        installment=installment,
        latest_first=latest_first,
    )
    session.flush()
    outcome = PaymentOutcome(payment=payment, created=True)
    audit.record(
        session,
        actor=recorded_by,
        action="payment.recorded",
        entity=payment,
        debtor_id=debtor.id,
        amount_minor=amount_minor,
        currency=currency,
        method=payment.method,
        provider=payment.provider,
        provider_ref=payment.provider_ref,
        payment_link_id=payment.payment_link_id,
        allocations=[
            {
                "invoice_id": a.invoice_id,
                "installment_id": a.installment_id,
                "amount_minor": a.amount_minor,
            }
            for a in result.allocations
        ],
    )
    if payment_link is not None and payment_link.paid_at is None:
        payment_link.paid_at = payment.received_at
        audit.record(
            session,
            actor=recorded_by,
            action="payment_link.paid",
            entity=payment_link,
            debtor_id=debtor.id,
            payment_id=payment.id,
        )
    _settle_invoices(session, result, outcome, recorded_by)
    _settle_installments(session, result, outcome, recorded_by)
    if result.leftover_minor:
        debtor.credit_minor += result.leftover_minor
        outcome.credited_minor = result.leftover_minor
        audit.record(
            session,
            actor=recorded_by,
            action="debtor.credit_added",
            entity=debtor,
            debtor_id=debtor.id,
            amount_minor=result.leftover_minor,
            currency=currency,
            payment_id=payment.id,
            credit_minor=debtor.credit_minor,
        )
    _keep_promises(session, debtor, outcome, recorded_by)
    _close_reconciliation_tasks(session, debtor, payment)
    if announced(payment.method):
        emit(
            session,
            RECEIVED_EVENT,
            debtor_id=debtor.id,
            **received_data(
                payment_id=payment.id,
                amount_minor=amount_minor,
                currency=currency,
                method=payment.method,
                provider=payment.provider,
                provider_ref=payment.provider_ref,
                received_at=payment.received_at,
                paid_invoice_ids=outcome.paid_invoice_ids,
                credited_minor=outcome.credited_minor,
            ),
        )
    session.flush()
    if thank:
        notify_debtor(
            session,
            debtor,
            THANKS_RESPONSE,
            {
                "amount_minor": amount_minor,
                "currency": currency,
                "remaining_minor": open_balance(session, debtor.id, currency),
                "credit_minor": debtor.credit_minor,
            },
            reason=f"payment:{payment.id}",
        )
    return outcome


def announced(method: str) -> bool:
    """Whether a payment is told to the creditor's system: a credit note is a correction, not
    money received."""
    return method != "credit_note"


def received_data(
    *,
    payment_id: int,
    amount_minor: int,
    currency: str,
    method: str,
    provider: str,
    provider_ref: str,
    received_at: datetime,
    paid_invoice_ids: Sequence[int],
    credited_minor: int,
) -> dict[str, Any]:
    """The data of the `payment.received` outbox event; `record_many` sends the same."""
    return {
        "payment_id": payment_id,
        "amount_minor": amount_minor,
        "currency": currency,
        "method": method,
        "provider": provider,
        "provider_ref": provider_ref,
        "received_at": received_at,
        "paid_invoice_ids": list(paid_invoice_ids),
        "credited_minor": credited_minor,
    }


def open_balance(session: Session, debtor_id: int, currency: str | None = None) -> int:
    """What the debtor still owes on open and disputed invoices, in minor units."""
    query = select(func.coalesce(func.sum(Invoice.amount_minor - Invoice.paid_minor), 0)).where(
        Invoice.debtor_id == debtor_id,
        Invoice.status.in_((InvoiceStatus.OPEN, InvoiceStatus.DISPUTED)),
    )
    if currency:
        query = query.where(Invoice.currency == currency)
    return max(int(session.scalar(query) or 0), 0)


def _settle_invoices(
    session: Session, result: AllocationResult, outcome: PaymentOutcome, actor: str
) -> None:
    """A fully paid invoice leaves dunning at once: status paid, no pause left to resume."""
    for invoice in result.invoices:
        if invoice.balance_minor == 0 and invoice.status != InvoiceStatus.PAID:
            invoice.status = InvoiceStatus.PAID
            invoice.paid_at = outcome.payment.received_at
            invoice.dunning_paused_until = None
            outcome.paid_invoice_ids.append(invoice.id)
            audit.record(
                session,
                actor=actor,
                action="invoice.paid",
                entity=invoice,
                debtor_id=invoice.debtor_id,
                payment_id=outcome.payment.id,
            )


def _settle_installments(
    session: Session, result: AllocationResult, outcome: PaymentOutcome, actor: str
) -> None:
    plans: dict[int, PaymentPlan] = {}
    for inst in result.installments:
        if inst.paid_minor >= inst.amount_minor:
            inst.status = InstallmentStatus.PAID
        elif inst.status == InstallmentStatus.DUE:
            inst.status = InstallmentStatus.PARTIAL
        audit.record(
            session,
            actor=actor,
            action="installment.payment",
            entity=inst,
            debtor_id=inst.plan.debtor_id,
            payment_id=outcome.payment.id,
            paid_minor=inst.paid_minor,
            status=inst.status,
        )
        plans[inst.plan_id] = inst.plan
    for plan in plans.values():
        if plan.status == PlanStatus.ACTIVE and all(
            i.status == InstallmentStatus.PAID for i in plan.installments
        ):
            plan.status = PlanStatus.COMPLETED
            outcome.completed_plan_ids.append(plan.id)
            audit.record(
                session,
                actor=actor,
                action="plan.completed",
                entity=plan,
                debtor_id=plan.debtor_id,
                payment_id=outcome.payment.id,
            )


def _keep_promises(session: Session, debtor: Debtor, outcome: PaymentOutcome, actor: str) -> None:
    """A pending promise is kept once it is met (`promise_met`)."""
    promises = session.scalars(
        select(Promise)
        .where(Promise.debtor_id == debtor.id, Promise.status == PromiseStatus.PENDING)
        .order_by(Promise.promised_date, Promise.id)
    ).all()
    for promise in promises:
        if promise_met(session, promise):
            promise.status = PromiseStatus.KEPT
            outcome.kept_promise_ids.append(promise.id)
            audit.record(
                session,
                actor=actor,
                action="promise.kept",
                entity=promise,
                debtor_id=debtor.id,
                payment_id=outcome.payment.id,
            )


def promise_met(session: Session, promise: Promise) -> bool:
    """The money paid since the promise was made reaches its amount, or every invoice it covered
    is paid. A reversed payment is money that did not stay: it keeps no promise."""
    paid_since = session.scalar(
        select(func.coalesce(func.sum(kept_minor()), 0)).where(
            Payment.debtor_id == promise.debtor_id,
            Payment.currency == promise.currency,
            Payment.received_at >= promise.created_at,
            standing(),
        )
    )
    invoices_paid = bool(promise.invoice_ids) and all(
        (inv := session.get(Invoice, inv_id)) is None or inv.status == InvoiceStatus.PAID
        for inv_id in promise.invoice_ids
    )
    return int(paid_since or 0) >= promise.amount_minor or invoices_paid


def _close_reconciliation_tasks(session: Session, debtor: Debtor, payment: Payment) -> None:
    """A claimed payment that now shows up in the ledger closes the reconciliation task."""
    tasks = session.scalars(
        select(Task).where(
            Task.debtor_id == debtor.id,
            Task.kind == "reconciliation",
            Task.status == TaskStatus.OPEN,
        )
    ).all()
    settled = open_balance(session, debtor.id) == 0
    for task in tasks:
        matched = [*(task.details or {}).get("payment_ids", []), payment.id]
        task.details = {**(task.details or {}), "payment_ids": matched}
        if settled:
            task.status = TaskStatus.DONE
        audit.record(
            session,
            actor="system",
            action="reconciliation.payment_seen",
            entity=task,
            debtor_id=debtor.id,
            payment_id=payment.id,
            closed=settled,
        )
