"""Collection activity of a period as journal lines an accountant can load (CSV or JSON).

One line per money movement on the receivables: each part of a payment allocated to an invoice
(`payment`), each part of a credit note (`credit_note`), what a payment left as credit on the
debtor's account (`account_credit`), and each invoice cancelled because a dispute was upheld
(`cancellation`). Amounts are decimal strings in the currency's precision (never floats), dates
ISO, the period half-open [start, end) in UTC. The lines are sorted by date, then reference, so
two exports of one closed period are byte-identical.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal

from babel.numbers import get_currency_precision
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.csv_export import csv_bytes
from relance.db.models import AuditEvent, Debtor, Invoice, Payment, PaymentAllocation
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
    lines: list[Line] = []
    payments = session.execute(
        select(Payment, Debtor)
        .join(Debtor, Payment.debtor_id == Debtor.id)
        .where(Payment.received_at >= low, Payment.received_at < high)
    ).all()
    numbers = dict(
        session.execute(
            select(PaymentAllocation.id, Invoice.number)
            .join(Invoice, PaymentAllocation.invoice_id == Invoice.id)
            .join(Payment, PaymentAllocation.payment_id == Payment.id)
            .where(Payment.received_at >= low, Payment.received_at < high)
        ).all()
    )
    for payment, debtor in payments:
        kind = "credit_note" if payment.method == "credit_note" else "payment"
        allocated = 0

        def line(
            kind: str, invoice: str, minor: int, p: Payment = payment, d: Debtor = debtor
        ) -> Line:
            return Line(
                date=p.received_at.date().isoformat(),
                type=kind,
                reference=p.provider_ref,
                customer_number=d.customer_number,
                debtor=d.display_name,
                invoice_number=invoice,
                amount=decimal_amount(minor, p.currency),
                currency=p.currency,
                method=p.method,
                provider=p.provider,
            )

        for allocation in payment.allocations:
            allocated += allocation.amount_minor
            if allocation.invoice_id is not None:
                lines.append(line(kind, numbers.get(allocation.id, ""), allocation.amount_minor))
        if payment.amount_minor > allocated and not is_held(session, payment):
            lines.append(line("account_credit", "", payment.amount_minor - allocated))
    for event in session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "dispute.resolved",
            AuditEvent.at >= low,
            AuditEvent.at < high,
        )
    ):
        details = event.details or {}
        if details.get("invoice_status") != "cancelled" or not details.get("invoice_id"):
            continue
        invoice = session.get(Invoice, int(details["invoice_id"]))
        if invoice is None:
            continue
        lines.append(
            Line(
                date=event.at.date().isoformat(),
                type="cancellation",
                reference=f"dispute:{event.entity_id}",
                customer_number=invoice.debtor.customer_number,
                debtor=invoice.debtor.display_name,
                invoice_number=invoice.number,
                amount=decimal_amount(invoice.balance_minor, invoice.currency),
                currency=invoice.currency,
                method="",
                provider="",
            )
        )
    lines.sort(key=lambda x: (x.date, x.reference, x.invoice_number, x.type))
    return lines


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
