"""All-or-nothing import of debtors and invoices.

Every row is validated first and every problem is reported with its line number; only a clean file
is written. Re-importing the same file is harmless: identical invoices are counted as unchanged,
an invoice number that exists with different figures is an error (never silently overwritten).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance import audit
from relance.db.models import Contact, Debtor, Invoice
from relance.db.models.enums import Channel, InvoiceStatus
from relance.portfolio.rows import DebtorData, ParsedRow, parse_row
from relance.privacy.scrub import ERASED
from relance.settings import get_settings

# Values per IN (...) query: well under SQLite's and PostgreSQL's parameter limits.
CHUNK = 500

_LAST_NUMBER = re.compile(r"(\d+)(\D*)$")


@dataclass
class ImportReport:
    rows: int = 0
    debtors_created: int = 0
    invoices_created: int = 0
    invoices_unchanged: int = 0
    errors: dict[int, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # imported anyway; shown to the operator

    @property
    def ok(self) -> bool:
        return not self.errors


def read_csv(text: str) -> list[dict[str, str | None]]:
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def import_rows(
    session: Session,
    rows: Iterable[dict[str, str | None]],
    *,
    actor: str = "system",
    date_shift_days: int = 0,
    progress: Callable[[], None] | None = None,
) -> ImportReport:
    """Validate all rows, then write them in the caller's transaction if (and only if) all are valid."""
    report = ImportReport()
    parsed: list[ParsedRow] = []
    first_line: dict[str, int] = {}
    for line, raw in enumerate(rows, start=2):  # line 1 is the CSV header
        report.rows += 1
        result = parse_row(line, raw, date_shift_days)
        if isinstance(result, list):
            report.errors[line] = result
        else:
            parsed.append(result)
        number = (raw.get("invoice_number") or "").strip()
        first = first_line.setdefault(number, line) if number else line
        if first != line:
            report.errors.setdefault(line, []).append(
                f"invoice {number} is repeated (first on line {first})"
            )
    _check_consistency(parsed, report)
    _check_phone_owners(session, parsed, report)
    existing = _existing_invoices(session, [p.invoice.number for p in parsed])
    for row in parsed:
        current = existing.get(row.invoice.number)
        if current is not None and not _same_invoice(current, row):
            report.errors.setdefault(row.line, []).append(
                f"invoice {row.invoice.number} already exists with different figures"
            )
    if report.errors:
        return report
    if get_settings().identity_check == "customer_number":
        _warn_sequential_customer_numbers(parsed, report)

    debtors: dict[str, Debtor] = {}
    for row in parsed:
        debtor = debtors.get(row.debtor.customer_number) or _debtor(session, row.debtor, report)
        debtors[row.debtor.customer_number] = debtor
        if row.invoice.number in existing:
            report.invoices_unchanged += 1
        else:
            inv = row.invoice
            session.add(
                Invoice(
                    debtor=debtor,
                    number=inv.number,
                    description=inv.description,
                    amount_minor=inv.amount_minor,
                    paid_minor=inv.paid_minor,
                    currency=inv.currency,
                    issue_date=inv.issue_date,
                    due_date=inv.due_date,
                    status=InvoiceStatus.PAID
                    if inv.paid_minor >= inv.amount_minor
                    else InvoiceStatus.OPEN,
                )
            )
            report.invoices_created += 1
        if progress:
            progress()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="portfolio.imported",
        rows=report.rows,
        debtors_created=report.debtors_created,
        invoices_created=report.invoices_created,
        warnings=report.warnings,
    )
    return report


def sequential_neighbours(numbers: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs of customer numbers that differ by one in their last run of digits ("C-FR-001" and
    "C-FR-002"): knowing one, a person can guess the other."""
    known = set(numbers)
    pairs = []
    for number in sorted(known):
        match = _LAST_NUMBER.search(number)
        if match is None:
            continue
        digits = match.group(1)
        following = str(int(digits) + 1).zfill(len(digits))
        neighbour = number[: match.start(1)] + following + match.group(2)
        if neighbour in known:
            pairs.append((number, neighbour))
    return pairs


def _warn_sequential_customer_numbers(parsed: list[ParsedRow], report: ImportReport) -> None:
    """Under IDENTITY_CHECK=customer_number the number is the debtor's secret (issue 17.1)."""
    pairs = sequential_neighbours({row.debtor.customer_number for row in parsed})
    if pairs:
        first, second = pairs[0]
        report.warnings.append(
            f"{len(pairs)} customer numbers follow each other (e.g. {first} and {second}); "
            "with IDENTITY_CHECK=customer_number they serve as the identity check and can be "
            "guessed: add a random check part to them, or use IDENTITY_CHECK=postcode"
        )


def _check_consistency(parsed: list[ParsedRow], report: ImportReport) -> None:
    debtor_rows: dict[str, DebtorData] = {}
    for row in parsed:
        known = debtor_rows.setdefault(row.debtor.customer_number, row.debtor)
        if known != row.debtor:
            report.errors.setdefault(row.line, []).append(
                f"customer {row.debtor.customer_number} has different details than on an earlier line"
            )


def _check_phone_owners(session: Session, parsed: list[ParsedRow], report: ImportReport) -> None:
    conflicts = phone_owner_conflicts(session, [row.debtor for row in parsed])
    for row, problems in zip(parsed, conflicts, strict=True):
        if problems:
            report.errors.setdefault(row.line, []).extend(problems)


def _existing_invoices(session: Session, numbers: list[str]) -> dict[str, Invoice]:
    found: dict[str, Invoice] = {}
    for start in range(0, len(numbers), CHUNK):
        chunk = numbers[start : start + CHUNK]
        for invoice in session.scalars(select(Invoice).where(Invoice.number.in_(chunk))):
            found[invoice.number] = invoice
    return found


def _same_invoice(invoice: Invoice, row: ParsedRow) -> bool:
    return (
        invoice.amount_minor == row.invoice.amount_minor
        and invoice.currency == row.invoice.currency
        and invoice.debtor.customer_number == row.debtor.customer_number
    )


def _debtor(session: Session, data: DebtorData, report: ImportReport) -> Debtor:
    debtor = session.scalars(
        select(Debtor).where(Debtor.customer_number == data.customer_number)
    ).first()
    if debtor is None:
        debtor = Debtor(
            customer_number=data.customer_number,
            name=data.name,
            company=data.company,
            segment=data.segment,
            risk_class=data.risk_class,
            language=data.language,
            timezone=data.timezone,
            jurisdiction=data.jurisdiction,
            email=data.email,
            address_line=data.address_line,
            postcode=data.postcode,
            city=data.city,
            country=data.country,
        )
        session.add(debtor)
        report.debtors_created += 1
    merge_contacts(session, debtor, data)
    return debtor


def merge_contacts(session: Session, debtor: Debtor, data: DebtorData) -> int:
    """Add the row's phone, WhatsApp and e-mail where the debtor lacks them; returns how many.

    Never removes nor revives one: an opted-out or wrong-person contact keeps its status, and a
    debtor erased on request gets no contact again. The caller has checked that the phone is no
    other debtor's (`phone_owner_conflicts`).
    """
    if debtor.name == ERASED:
        return 0  # erased on request: its invoices still import, its contacts never again
    wanted = [(Channel.SMS, data.phone), (Channel.VOICE, data.phone)]
    if data.whatsapp:
        wanted.append((Channel.WHATSAPP, "whatsapp:" + data.whatsapp))
    if data.email:  # validated and normalised by the row parser (email-validator)
        wanted.append((Channel.EMAIL, data.email))
    have = {(c.channel, c.address) for c in debtor.contacts}
    added = 0
    for channel, address in wanted:
        if (channel, address) not in have:
            debtor.contacts.append(Contact(channel=channel, address=address, consent=True))
            added += 1
    session.flush()
    return added


def phone_owner_conflicts(session: Session, debtors: Sequence[DebtorData]) -> list[list[str]]:
    """For each debtor's data, in order, why its phone cannot be that debtor's (empty if it can).

    A phone number identifies one debtor: sharing it would disclose one debt to another person.
    Within the batch the first customer to give a phone keeps it; in the database any other
    customer holding it wins. One query per 500 phones, and a dict lookup per row (the earlier
    per-row scan of every taken phone made a full re-import quadratic).
    """
    first_claim: dict[str, str] = {}
    problems: list[list[str]] = []
    for data in debtors:
        owner = first_claim.setdefault(data.phone, data.customer_number)
        problems.append([] if owner == data.customer_number else [_taken(data.phone, owner)])
    holders: dict[str, set[str]] = {}
    phones = list(first_claim)
    for start in range(0, len(phones), CHUNK):
        for address, customer_number in session.execute(
            select(Contact.address, Debtor.customer_number)
            .join(Debtor, Contact.debtor_id == Debtor.id)
            .where(Contact.address.in_(phones[start : start + CHUNK]))
        ):
            holders.setdefault(address, set()).add(customer_number)
    for data, found in zip(debtors, problems, strict=True):
        for owner in sorted(holders.get(data.phone, ())):
            if owner != data.customer_number and _taken(data.phone, owner) not in found:
                found.append(_taken(data.phone, owner))
    return problems


def _taken(phone: str, owner: str) -> str:
    return f"phone {phone} already belongs to customer {owner}"
