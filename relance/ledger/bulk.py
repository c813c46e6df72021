"""Many payments at once (a bank statement), with the effects `record_payment` has, in batches.

`record_payment` costs some twenty statements per payment (lock, idempotency check, allocation,
promises, reconciliation tasks, thanks), which held a 50,000-line statement to tens of lines per
second. Most lines of a statement are simple: one payment for a debtor who has no pending promise,
no active plan and no open reconciliation task. For those, this module does the same work for a
whole batch in a handful of statements: lock the debtors and their open invoices, allocate in
memory by the ledger's own order (named invoices first, then the oldest open ones; disputed ones
only when named), insert payments, allocations and audit events with executemany, update invoices
and credit by primary key, and queue one `payment.received` outbox event per payment (the
creditor's webhooks) in the same transaction. The thanks go through `notify_debtor` exactly as
before for debtors with a reachable text contact (sending is one provider call per message
anyway); the others get the same `notify.skipped` audit event, written in bulk.

Every other payment (several for one debtor in the batch, a promise, a plan, a task, an
already-known provider reference) goes through `record_payment` one by one, so the rules live in
one place. `tests/relance/ledger/test_bulk.py` checks both paths leave the same ledger and the
same outbox events.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from relance.db.base import utcnow
from relance.db.models import (
    AuditEvent,
    Contact,
    Debtor,
    Invoice,
    Payment,
    PaymentAllocation,
    PaymentPlan,
    Promise,
    Task,
)
from relance.db.models.enums import InvoiceStatus, PlanStatus, PromiseStatus, TaskStatus
from relance.ledger.notify import TEXT_CHANNELS, notify_debtor
from relance.ledger.service import (
    RECEIVED_EVENT,
    THANKS_RESPONSE,
    announced,
    open_balance,
    received_data,
    record_payment,
)
from relance.outbox.service import emit_many

BATCH = 500


@dataclass(frozen=True)
class NewPayment:
    debtor_id: int
    amount_minor: int
    currency: str
    provider_ref: str
    received_at: datetime
    invoice_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Recorded:
    payment_id: int
    paid_invoice_ids: tuple[int, ...]


def record_many(
    session: Session,
    payments: Sequence[NewPayment],
    *,
    method: str,
    provider: str,
    recorded_by: str,
) -> list[Recorded]:
    """Record each payment once, allocated and applied; results in the order given."""
    results: list[Recorded] = []
    for start in range(0, len(payments), BATCH):
        results.extend(
            _batch(session, payments[start : start + BATCH], method, provider, recorded_by)
        )
    return results


def _batch(
    session: Session,
    payments: Sequence[NewPayment],
    method: str,
    provider: str,
    recorded_by: str,
) -> list[Recorded]:
    for p in payments:
        if p.amount_minor <= 0:
            raise ValueError("a payment must be a positive amount")
    debtor_ids = sorted({p.debtor_id for p in payments})
    # Lock the debtors first, like lock_debtor: money movements per debtor stay serialised.
    debtors = {
        d.id: d
        for d in session.scalars(
            select(Debtor)
            .where(Debtor.id.in_(debtor_ids))
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    complex_ids = _needs_one_by_one(session, debtor_ids)
    known_refs = set(
        session.scalars(
            select(Payment.provider_ref).where(
                Payment.provider_ref.in_([p.provider_ref for p in payments])
            )
        )
    )
    per_debtor = Counter(p.debtor_id for p in payments)
    simple = [
        p
        for p in payments
        if p.debtor_id not in complex_ids
        and per_debtor[p.debtor_id] == 1
        and p.provider_ref not in known_refs
    ]
    done = _apply_simple(session, simple, debtors, method, provider, recorded_by)
    results = []
    for p in payments:
        if p.provider_ref in done:
            results.append(done[p.provider_ref])
            continue
        outcome = record_payment(
            session,
            debtor_id=p.debtor_id,
            amount_minor=p.amount_minor,
            currency=p.currency,
            method=method,
            provider=provider,
            provider_ref=p.provider_ref,
            invoice_ids=list(p.invoice_ids) or None,
            received_at=p.received_at,
            recorded_by=recorded_by,
        )
        results.append(Recorded(outcome.payment.id, tuple(outcome.paid_invoice_ids)))
    return results


def _needs_one_by_one(session: Session, debtor_ids: list[int]) -> set[int]:
    """Debtors whose payment has more to do than settle invoices: promises, plans, tasks."""
    found: set[int] = set()
    for query in (
        select(Promise.debtor_id).where(
            Promise.debtor_id.in_(debtor_ids), Promise.status == PromiseStatus.PENDING
        ),
        select(PaymentPlan.debtor_id).where(
            PaymentPlan.debtor_id.in_(debtor_ids), PaymentPlan.status == PlanStatus.ACTIVE
        ),
        select(Task.debtor_id).where(
            Task.debtor_id.in_(debtor_ids),
            Task.kind == "reconciliation",
            Task.status == TaskStatus.OPEN,
        ),
    ):
        found.update(d for d in session.scalars(query) if d is not None)
    return found


def _apply_simple(
    session: Session,
    payments: list[NewPayment],
    debtors: dict[int, Debtor],
    method: str,
    provider: str,
    recorded_by: str,
) -> dict[str, Recorded]:
    if not payments:
        return {}
    session.flush()
    ids = [p.debtor_id for p in payments]
    queues: dict[int, list[Any]] = defaultdict(list)
    for row in session.execute(
        select(
            Invoice.id,
            Invoice.debtor_id,
            Invoice.currency,
            Invoice.status,
            Invoice.amount_minor,
            Invoice.paid_minor,
        )
        .where(
            Invoice.debtor_id.in_(ids),
            Invoice.status.in_((InvoiceStatus.OPEN, InvoiceStatus.DISPUTED)),
        )
        .order_by(Invoice.due_date, Invoice.issue_date, Invoice.id)
        .with_for_update()
    ):
        queues[row.debtor_id].append(row)
    now = utcnow()
    payment_rows = [
        {
            "debtor_id": p.debtor_id,
            "amount_minor": p.amount_minor,
            "currency": p.currency.upper(),
            "method": method,
            "provider": provider,
            "provider_ref": p.provider_ref,
            "payment_link_id": None,
            "received_at": p.received_at,
            "recorded_by": recorded_by,
            "created_at": now,
        }
        for p in payments
    ]
    returned = session.execute(
        insert(Payment).returning(Payment.id, Payment.provider_ref, sort_by_parameter_order=True),
        payment_rows,
    ).all()
    payment_ids = {ref: pid for pid, ref in returned}
    allocations: list[dict[str, Any]] = []
    invoice_updates: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    received: list[tuple[int | None, dict[str, Any]]] = []
    done: dict[str, Recorded] = {}

    def event(action: str, entity: str, entity_id: int, debtor_id: int, **details: Any) -> None:
        events.append(
            {
                "at": now,
                "actor": recorded_by,
                "action": action,
                "entity_type": entity,
                "entity_id": str(entity_id),
                "debtor_id": debtor_id,
                "details": details,
            }
        )

    for p in payments:
        payment_id = payment_ids[p.provider_ref]
        currency = p.currency.upper()
        named = set(p.invoice_ids)
        rows = [r for r in queues[p.debtor_id] if r.currency == currency]
        queue = [r for r in rows if r.id in named] + [
            r for r in rows if r.id not in named and r.status == InvoiceStatus.OPEN
        ]
        left = p.amount_minor
        taken: list[dict[str, Any]] = []
        paid: list[int] = []
        for row in queue:
            balance = max(row.amount_minor - row.paid_minor, 0)
            if left <= 0 or balance <= 0:
                continue
            take = min(left, balance)
            left -= take
            taken.append({"invoice_id": row.id, "installment_id": None, "amount_minor": take})
            settled = take == balance
            invoice_updates.append(
                {
                    "id": row.id,
                    "paid_minor": row.paid_minor + take,
                    **({"status": InvoiceStatus.PAID, "paid_at": p.received_at} if settled else {}),
                }
            )
            if settled:
                paid.append(row.id)
        allocations.extend({"payment_id": payment_id, **a} for a in taken)
        event(
            "payment.recorded",
            "payments",
            payment_id,
            p.debtor_id,
            amount_minor=p.amount_minor,
            currency=currency,
            method=method,
            provider=provider,
            provider_ref=p.provider_ref,
            payment_link_id=None,
            allocations=taken,
        )
        for invoice_id in paid:
            event("invoice.paid", "invoices", invoice_id, p.debtor_id, payment_id=payment_id)
        if left:
            debtor = debtors[p.debtor_id]
            debtor.credit_minor += left
            event(
                "debtor.credit_added",
                "debtors",
                debtor.id,
                debtor.id,
                amount_minor=left,
                currency=currency,
                payment_id=payment_id,
                credit_minor=debtor.credit_minor,
            )
        if announced(method):
            received.append(
                (
                    p.debtor_id,
                    received_data(
                        payment_id=payment_id,
                        amount_minor=p.amount_minor,
                        currency=currency,
                        method=method,
                        provider=provider,
                        provider_ref=p.provider_ref,
                        received_at=p.received_at,
                        paid_invoice_ids=paid,
                        credited_minor=left,
                    ),
                )
            )
        done[p.provider_ref] = Recorded(payment_id, tuple(paid))
    if allocations:
        session.execute(insert(PaymentAllocation), allocations)
    # Settled invoices leave dunning at once (status paid, no pause left), partly paid ones
    # keep their status: two statements, each an executemany by primary key.
    settled_rows = [{**u, "dunning_paused_until": None} for u in invoice_updates if "status" in u]
    partial_rows = [u for u in invoice_updates if "status" not in u]
    if settled_rows:
        session.execute(update(Invoice), settled_rows)
    if partial_rows:
        session.execute(update(Invoice), partial_rows)
    if events:
        session.execute(insert(AuditEvent), events)
    # The creditor's system hears of each payment as it does from record_payment: one
    # `payment.received` per payment, in this transaction.
    emit_many(session, RECEIVED_EVENT, received)
    # Objects of these invoices already in the session would now read stale amounts.
    for u in invoice_updates:
        stale = session.identity_map.get(identity_key(Invoice, u["id"]))
        if stale is not None:
            session.expire(stale)
    session.flush()
    _thank(session, payments, debtors, payment_ids, recorded_by)
    return done


def _thank(
    session: Session,
    payments: list[NewPayment],
    debtors: dict[int, Debtor],
    payment_ids: dict[str, int],
    recorded_by: str,
) -> None:
    """Thanks as apply_payment sends them; debtors nobody can reach get the same audit event."""
    ids = [p.debtor_id for p in payments]
    reachable = {
        c.debtor_id
        for c in session.scalars(
            select(Contact).where(Contact.debtor_id.in_(ids), Contact.channel.in_(TEXT_CHANNELS))
        )
        if c.reachable
    }
    skipped = []
    now = utcnow()
    for p in payments:
        payment_id = payment_ids[p.provider_ref]
        if p.debtor_id not in reachable:
            skipped.append(
                {
                    "at": now,
                    "actor": "system",
                    "action": "notify.skipped",
                    "entity_type": "debtors",
                    "entity_id": str(p.debtor_id),
                    "debtor_id": p.debtor_id,
                    "details": {
                        "response": THANKS_RESPONSE,
                        "reason": f"payment:{payment_id}",
                        "why": "no reachable text contact",
                    },
                }
            )
            continue
        debtor = debtors[p.debtor_id]
        session.refresh(debtor)
        notify_debtor(
            session,
            debtor,
            THANKS_RESPONSE,
            {
                "amount_minor": p.amount_minor,
                "currency": p.currency.upper(),
                "remaining_minor": open_balance(session, debtor.id, p.currency.upper()),
                "credit_minor": debtor.credit_minor,
            },
            reason=f"payment:{payment_id}",
        )
    if skipped:
        session.execute(insert(AuditEvent), skipped)
        session.flush()
