"""Collection activity of a period as journal lines an accountant can load (CSV or JSON).

One line per money movement on the receivables: each part of a payment allocated to an invoice
(`payment`), each part of a credit note (`credit_note`), what a payment left as credit on the
debtor's account (`account_credit`), and each invoice cancelled because a dispute was upheld
(`cancellation`). Amounts are decimal strings in the currency's precision (never floats), dates
ISO, the period half-open [start, end) in UTC. The lines are sorted by date, then reference, so
two exports of one closed period are byte-identical.

An e-invoice payable in instalments is kept as one invoice row per instalment, numbered
"<number> (k/n)" so that each is dunned and paid on its own (`relance/einvoice/service.py`). The
creditor's accounting knows one document, "<number>", and matches (letters) the journal's lines
against it: `invoice_number` is the document's own number (`invoices.instalment_of`), and the
instalment, "k/n", is in the `instalment` column, empty for an invoice payable at once.

A payment reversed later (a SEPA debit returned, a dispute lost: `relance/ledger/reversal.py`)
keeps its lines in the period it was received, read back from the reversal's audit event (the
reversal deletes or reduces the allocation rows), and what came back gets `reversal` lines of
the opposite amount, dated the day of the reversal, with the same reference: all its lines, or
for a dispute of part of the payment, the parts taken back. A closed period never changes, and
the period of the reversal carries the money that came back.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

from babel.numbers import get_currency_precision
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance.csv_export import csv_bytes
from relance.db.models import AuditEvent, Debtor, Invoice, Payment
from relance.errors import BadInput
from relance.ledger.review import is_held

COLUMNS = (
    "date",
    "type",
    "reference",
    "customer_number",
    "debtor",
    "invoice_number",
    "amount",
    "currency",
    "method",
    "provider",
    "instalment",
)
MAX_DAYS = 366


@dataclass(frozen=True)
class Line:
    date: str
    type: str
    reference: str
    customer_number: str
    debtor: str
    invoice_number: str
    amount: str
    currency: str
    method: str
    provider: str
    instalment: str  # "k/n": the instalment of `invoice_number` a line is about, else ""


def decimal_amount(minor: int, currency: str) -> str:
    precision = get_currency_precision(currency)
    return str((Decimal(minor) / (Decimal(10) ** precision)).quantize(Decimal(10) ** -precision))


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    if end <= start:
        raise BadInput("invalid_period", "The period's end must be after its start")
    if (end - start).days > MAX_DAYS:
        raise BadInput("invalid_period", f"A period is at most {MAX_DAYS} days")
    return datetime.combine(start, time(), UTC), datetime.combine(end, time(), UTC)


def journal(session: Session, start: date, end: date) -> list[Line]:
    low, high = _bounds(start, end)
    received = (Payment.received_at >= low) & (Payment.received_at < high)
    came_back = (Payment.reversed_at >= low) & (Payment.reversed_at < high)
    payments = session.execute(
        select(Payment, Debtor)
        .join(Debtor, Payment.debtor_id == Debtor.id)
        .where(received | came_back)
        .order_by(Payment.id)
    ).all()
    reversals = _reversal_events(session, [p.id for p, _ in payments if p.reversed_at])
    parts = {p.id: _parts(session, p, reversals.get(p.id, [])) for p, _ in payments}
    invoice_ids = {i for found in parts.values() for side in found for i, _ in side if i}
    documents = _documents(session, invoice_ids)
    lines: list[Line] = []
    for payment, debtor in payments:
        kind = "credit_note" if payment.method == "credit_note" else "payment"
        paid_in, paid_back = parts[payment.id]
        moments = [(payment.received_at, 1, paid_in)]
        if payment.reversed_at is not None:
            moments.append((payment.reversed_at, -1, paid_back))
        for at, sign, moved in moments:
            if not low <= at < high:
                continue
            for invoice_id, minor in moved:
                line_kind = "reversal" if sign < 0 else (kind if invoice_id else "account_credit")
                number, instalment = documents.get(invoice_id, ("", "")) if invoice_id else ("", "")
                lines.append(
                    Line(
                        date=at.date().isoformat(),
                        type=line_kind,
                        reference=payment.provider_ref,
                        customer_number=debtor.customer_number,
                        debtor=debtor.display_name,
                        invoice_number=number,
                        amount=decimal_amount(sign * minor, payment.currency),
                        currency=payment.currency,
                        method=payment.method,
                        provider=payment.provider,
                        instalment=instalment,
                    )
                )
    for event in session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "dispute.resolved",
            AuditEvent.at >= low,
            AuditEvent.at < high,
        )
    ):
        details = event.details or {}
        # Older decisions say only the invoice's status after them.
        cancelled = details.get("invoice_cancelled", details.get("invoice_status") == "cancelled")
        if not cancelled or not details.get("invoice_id"):
            continue
        invoice = session.get(Invoice, int(details["invoice_id"]))
        if invoice is None:
            continue
        number, instalment = _documents(session, {invoice.id})[invoice.id]
        lines.append(
            Line(
                date=event.at.date().isoformat(),
                type="cancellation",
                reference=f"dispute:{event.entity_id}",
                customer_number=invoice.debtor.customer_number,
                debtor=invoice.debtor.display_name,
                invoice_number=number,
                amount=decimal_amount(invoice.balance_minor, invoice.currency),
                currency=invoice.currency,
                method="",
                provider="",
                instalment=instalment,
            )
        )
    lines.sort(key=lambda x: (x.date, x.reference, x.invoice_number, _place(x.instalment), x.type))
    return lines


def _documents(session: Session, invoice_ids: set[int]) -> dict[int, tuple[str, str]]:
    """Each invoice's (document number, "k/n"): an instalment row "F-1 (2/3)" is ("F-1",
    "2/3"), any other invoice (its number, ""). `n` is how many rows the document made (a
    re-import never changes it), not read back from the row's number."""
    if not invoice_ids:
        return {}
    rows = session.execute(
        select(Invoice.id, Invoice.number, Invoice.instalment_of, Invoice.instalment_no).where(
            Invoice.id.in_(invoice_ids)
        )
    ).all()
    parts: dict[str, int] = {}
    of_documents = {row.instalment_of for row in rows if row.instalment_no is not None}
    if of_documents:
        for document, count in session.execute(
            select(Invoice.instalment_of, func.count(Invoice.id))
            .where(Invoice.instalment_of.in_(of_documents))
            .group_by(Invoice.instalment_of)
        ):
            parts[str(document)] = int(count)
    found: dict[int, tuple[str, str]] = {}
    for invoice_id, number, document, no in rows:
        if document is None or no is None:
            found[invoice_id] = (number, "")
        else:
            found[invoice_id] = (document, f"{no}/{parts[document]}")
    return found


def _place(instalment: str) -> int:
    """Instalment "k/n" sorts by k (so "10/12" after "2/12")."""
    return int(instalment.split("/", 1)[0]) if instalment else 0


def _reversal_events(session: Session, payment_ids: list[int]) -> dict[int, list[AuditEvent]]:
    found: dict[int, list[AuditEvent]] = {}
    if not payment_ids:
        return found
    for event in session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.action == "payment.reversed",
            AuditEvent.entity_type == Payment.__tablename__,
            AuditEvent.entity_id.in_([str(i) for i in payment_ids]),
        )
        .order_by(AuditEvent.id)
    ):
        found.setdefault(int(event.entity_id or 0), []).append(event)
    return found


Parts = list[tuple[int | None, int]]


def _parts(session: Session, payment: Payment, reversals: list[AuditEvent]) -> tuple[Parts, Parts]:
    """(invoice id, minor units) of each journal line the payment made when it was received (its
    parts allocated to invoices, then what it left as credit: invoice None), and of each that
    came back. What a reversal took back is read from its audit event: an allocation it deleted,
    or the part of one it reduced, which is added back to the received line."""
    current = {a.id: a for a in payment.allocations}
    added_back: Counter[int] = Counter()
    gone: Parts = []
    taken: Parts = []
    credit_back = 0
    for event in reversals:
        details = event.details or {}
        credit_back += int(details.get("credit_removed_minor") or 0)
        for part in details.get("allocations", []):
            invoice_id, minor = part.get("invoice_id"), int(part["amount_minor"])
            taken.append((invoice_id, minor))
            if part.get("allocation_id") in current:
                added_back[part["allocation_id"]] += minor
            else:
                gone.append((invoice_id, minor))
    allocated = [(a.invoice_id, a.amount_minor + added_back[a.id]) for a in current.values()]
    allocated += gone
    received: Parts = [(i, minor) for i, minor in allocated if i is not None]
    left = payment.amount_minor - sum(minor for _, minor in allocated)
    if left > 0 and not is_held(session, payment):
        received.append((None, left))
    returned: Parts = [(i, minor) for i, minor in taken if i is not None]
    if credit_back > 0:
        returned.append((None, credit_back))
    return received, returned


def to_csv(lines: list[Line]) -> bytes:
    return csv_bytes(COLUMNS, ([getattr(x, c) for c in COLUMNS] for x in lines))


def to_json(lines: list[Line], start: date, end: date) -> bytes:
    totals: dict[str, dict[str, Decimal]] = {}
    for x in lines:
        bucket = totals.setdefault(x.currency, {})
        bucket[x.type] = bucket.get(x.type, Decimal(0)) + Decimal(x.amount)
    return json.dumps(
        {
            "period": {"start": start.isoformat(), "end": end.isoformat()},
            "lines": [asdict(x) for x in lines],
            "totals": {c: {k: str(v) for k, v in t.items()} for c, t in totals.items()},
        },
        indent=2,
        ensure_ascii=False,
    ).encode()
