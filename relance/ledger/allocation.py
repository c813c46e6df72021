"""Which invoices and installments a payment settles, and in what order.

Rules: the invoices a link (or a collector) names come first, then the debtor's other open invoices,
oldest due date first. Money that lands on an invoice covered by an active payment plan also counts
towards that plan's installments (the named installment first, then the next ones by due date).
Disputed invoices only receive money when named explicitly, and after the named invoices nobody
contests: an instalment's link names all of its plan's invoices, and what the debtor pays for
their plan while contesting one of them settles the others (the contested invoice's share is what
the plan holds meanwhile, `relance/plans/holds.py`, and what an upheld dispute cancels). What is
left becomes credit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import Installment, Invoice, Payment, PaymentAllocation, PaymentPlan
from relance.db.models.enums import InstallmentStatus, InvoiceStatus, PlanStatus

UNPAID_INSTALLMENT = (InstallmentStatus.DUE, InstallmentStatus.PARTIAL, InstallmentStatus.MISSED)


@dataclass
class AllocationResult:
    allocations: list[PaymentAllocation] = field(default_factory=list)
    invoices: list[Invoice] = field(default_factory=list)
    installments: list[Installment] = field(default_factory=list)
    leftover_minor: int = 0


def invoice_queue(
    session: Session,
    debtor_id: int,
    currency: str,
    named: list[int] | None,
    *,
    latest_first: bool = False,
) -> list[Invoice]:
    """Named invoices first (oldest first among them, or latest first: a credit note on an invoice
    payable in instalments takes off what is owed last; disputed ones last), then the other open
    ones, oldest first."""
    order = (Invoice.due_date, Invoice.issue_date, Invoice.id)
    rows = list(
        session.scalars(
            select(Invoice)
            .where(
                Invoice.debtor_id == debtor_id,
                Invoice.currency == currency,
                Invoice.status.in_((InvoiceStatus.OPEN, InvoiceStatus.DISPUTED)),
            )
            .order_by(*order)
            .with_for_update()
        )
    )
    named_set = set(named or [])
    first = [inv for inv in rows if inv.id in named_set]
    if latest_first:
        first.reverse()
    first.sort(key=lambda inv: inv.status == InvoiceStatus.DISPUTED)  # stable: order kept
    rest = [inv for inv in rows if inv.id not in named_set and inv.status == InvoiceStatus.OPEN]
    return [inv for inv in first + rest if inv.balance_minor > 0]


def installment_queue(
    session: Session, debtor_id: int, named: Installment | None
) -> list[Installment]:
    """The named installment, then every other unpaid installment of the debtor's active plans."""
    rows = list(
        session.scalars(
            select(Installment)
            .join(PaymentPlan)
            .where(
                PaymentPlan.debtor_id == debtor_id,
                PaymentPlan.status == PlanStatus.ACTIVE,
                Installment.status.in_(UNPAID_INSTALLMENT),
            )
            .order_by(Installment.due_date, Installment.seq, Installment.id)
            .with_for_update()
        )
    )
    if named is not None:
        rows = [named] + [row for row in rows if row.id != named.id]
    return [row for row in rows if row.amount_minor > row.paid_minor]


def _covers(installment: Installment, invoice: Invoice | None) -> bool:
    plan_invoices = installment.plan.invoice_ids or []
    return invoice is None or not plan_invoices or invoice.id in plan_invoices


def allocate(
    session: Session,
    payment: Payment,
    *,
    invoice_ids: list[int] | None = None,
    installment: Installment | None = None,
    latest_first: bool = False,
) -> AllocationResult:
    """Spread `payment` over invoices and installments; returns what was touched and the rest."""
    invoices = invoice_queue(
        session, payment.debtor_id, payment.currency, invoice_ids, latest_first=latest_first
    )
    installments = installment_queue(session, payment.debtor_id, installment)
    result = AllocationResult()
    left = payment.amount_minor
    while left > 0 and (invoices or installments):
        invoice = invoices[0] if invoices else None
        inst = next((i for i in installments if _covers(i, invoice)), None)
        if invoice is None and inst is None:
            break
        caps = [left]
        if invoice is not None:
            caps.append(invoice.balance_minor)
        if inst is not None:
            caps.append(inst.amount_minor - inst.paid_minor)
        take = min(caps)
        allocation = PaymentAllocation(
            invoice_id=invoice.id if invoice else None,
            installment_id=inst.id if inst else None,
            amount_minor=take,
        )
        payment.allocations.append(allocation)
        result.allocations.append(allocation)
        left -= take
        if invoice is not None:
            invoice.paid_minor += take
            if invoice not in result.invoices:
                result.invoices.append(invoice)
            if invoice.balance_minor == 0:
                invoices.pop(0)
        if inst is not None:
            inst.paid_minor += take
            if inst not in result.installments:
                result.installments.append(inst)
            if inst.paid_minor >= inst.amount_minor:
                installments.remove(inst)
    result.leftover_minor = left
    return result
