"""Bank transfers: typed by a collector or imported from the bank's CSV export.

Both go through `record_payment`, so allocation, dunning stop and thanks are the same as for a card.
The bank reference is the idempotency key: importing the same statement twice records nothing new.

CSV columns (header row required, `;` or `,` separated):
    date, amount, currency, reference, customer_number, invoice_number
`amount` is in major units ("120.50" or "120,50"); `customer_number` or `invoice_number` (or both)
identifies the debtor; a named invoice is paid first.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from babel.numbers import get_currency_precision
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import Debtor, Invoice
from relance.errors import InvalidContent, NotFound, RelanceError
from relance.ledger.service import PaymentOutcome, find_payment, record_payment

BANK_PROVIDER = "bank"


@dataclass
class ImportReport:
    recorded: list[int] = field(default_factory=list)  # payment ids
    duplicates: list[str] = field(default_factory=list)  # references already in the ledger
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, why)


def to_minor(amount: str, currency: str) -> int:
    """'1 234,50' EUR -> 123450. Refuses (`InvalidContent("invalid_amount")`) what is not a
    positive amount with at most the currency's decimals."""
    text = amount.strip().replace("\u00a0", "").replace(" ", "")
    if "," in text and "." in text:
        text = (
            text.replace(".", "").replace(",", ".")
            if text.rfind(",") > text.rfind(".")
            else text.replace(",", "")
        )
    else:
        text = text.replace(",", ".")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise InvalidContent("invalid_amount", f"not an amount: {amount!r}") from exc
    scaled = value * (Decimal(10) ** get_currency_precision(currency))
    if scaled != scaled.to_integral_value():
        raise InvalidContent("invalid_amount", f"too many decimals for {currency}: {amount!r}")
    if scaled <= 0:
        raise InvalidContent("invalid_amount", f"amount must be positive: {amount!r}")
    return int(scaled)


def record_transfer(
    session: Session,
    *,
    reference: str,
    amount_minor: int,
    currency: str,
    received_on: date,
    debtor_id: int | None = None,
    customer_number: str | None = None,
    invoice_number: str | None = None,
    recorded_by: str = "system",
) -> PaymentOutcome:
    """Record one bank transfer through the common allocation path.

    Refused before anything is stored: no reference (`InvalidContent("reference_required")`), an
    unknown invoice or customer (`NotFound("invoice_not_found" | "customer_not_found")`), an
    invoice of another customer (`InvalidContent("invoice_not_customers")`), or neither named
    (`InvalidContent("debtor_required")`).
    """
    reference = reference.strip()
    if not reference:
        raise InvalidContent(
            "reference_required", "a bank reference is required (it prevents double entry)"
        )
    invoice = None
    if invoice_number:
        invoice = session.scalars(select(Invoice).where(Invoice.number == invoice_number)).first()
        if invoice is None:
            raise NotFound("invoice_not_found", f"unknown invoice {invoice_number}")
    if customer_number:
        debtor = session.scalars(
            select(Debtor).where(Debtor.customer_number == customer_number)
        ).first()
        if debtor is None:
            raise NotFound("customer_not_found", f"unknown customer {customer_number}")
        if invoice is not None and invoice.debtor_id != debtor.id:
            raise InvalidContent(
                "invoice_not_customers",
                f"invoice {invoice_number} is not customer {customer_number}'s",
            )
        debtor_id = debtor.id
    if debtor_id is None:
        if invoice is None:
            raise InvalidContent("debtor_required", "customer_number or invoice_number is required")
        debtor_id = invoice.debtor_id
    return record_payment(
        session,
        debtor_id=debtor_id,
        amount_minor=amount_minor,
        currency=currency,
        method="transfer",
        provider=BANK_PROVIDER,
        provider_ref=f"{BANK_PROVIDER}:{reference}",
        invoice_ids=[invoice.id] if invoice is not None else None,
        received_at=datetime.combine(received_on, datetime.min.time(), UTC),
        recorded_by=recorded_by,
    )


def import_transfers_csv(session: Session, text: str, *, recorded_by: str) -> ImportReport:
    """Record every valid row; a bad row is reported and skipped, the others still go in.

    A row's refusal (any `RelanceError` from `to_minor`/`record_transfer`) becomes a
    `(line, message)` entry in the report rather than an error: the file is not all-or-nothing.
    """
    report = ImportReport()
    sample = text[:2048]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    for line, row in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        try:
            currency = (row.get("currency") or "EUR").upper()
            reference = row.get("reference", "")
            if reference and find_payment(session, f"{BANK_PROVIDER}:{reference}") is not None:
                report.duplicates.append(reference)
                continue
            try:
                received_on = date.fromisoformat(row.get("date", ""))
            except ValueError as exc:
                raise InvalidContent(
                    "invalid_date", f"not an ISO date: {row.get('date')!r}"
                ) from exc
            with session.begin_nested():
                outcome = record_transfer(
                    session,
                    reference=reference,
                    amount_minor=to_minor(row.get("amount", ""), currency),
                    currency=currency,
                    received_on=received_on,
                    customer_number=row.get("customer_number") or None,
                    invoice_number=row.get("invoice_number") or None,
                    recorded_by=recorded_by,
                )
        except RelanceError as exc:
            report.errors.append((line, exc.message))
            continue
        if outcome.created:
            report.recorded.append(outcome.payment.id)
        else:
            report.duplicates.append(reference)
    return report
