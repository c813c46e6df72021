"""All-or-nothing import of debtors and invoices.

Every row is validated and every problem is reported with its line number; only a clean file
is written (chunk by chunk inside a savepoint that a problem rolls back, so memory holds one
chunk, not the file). Re-importing the same file is harmless: identical invoices are counted as unchanged,
an invoice number that exists with different figures is an error (never silently overwritten).

The database is read and written per chunk of rows, never per row: one IN (...) query per chunk
looks up the debtors, invoices and contact owners, new debtors and contacts go out in one flush
and new invoices in one bulk INSERT. A query per row made the import spend its time in SQLAlchemy
round trips (two statements per row, ten per new debtor).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TextIO

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, selectinload

from relance import audit
from relance.db.models import Contact, Debtor, Invoice
from relance.db.models.enums import Channel, InvoiceStatus
from relance.portfolio.rows import DebtorData, InvoiceData, ParsedRow, parse_row
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


def stream_csv(handle: TextIO) -> Iterator[dict[str, str | None]]:
    """The rows of an open CSV file one at a time (open it with encoding="utf-8-sig"): a large
    file is never held whole, as `read_csv`'s list of rows is."""
    yield from csv.DictReader(handle)


@dataclass
class _Seen:
    """What the rules across rows need of the rows already judged: a few bytes per row, never
    the rows themselves."""

    first_line: dict[str, int] = field(default_factory=dict)  # invoice number -> first line
    debtors: dict[str, bytes] = field(default_factory=dict)  # customer number -> details digest
    claims: dict[str, str] = field(default_factory=dict)  # phone or e-mail -> first customer
    merged: set[str] = field(default_factory=set)  # customers whose contacts were merged


def import_rows(
    session: Session,
    rows: Iterable[dict[str, str | None]],
    *,
    actor: str = "system",
    date_shift_days: int = 0,
    progress: Callable[[], None] | None = None,
) -> ImportReport:
    """Judge every row and write the file in the caller's transaction if (and only if) all are
    valid; every problem is reported with its line.

    Rows are read, judged and written one chunk at a time inside a savepoint, so memory holds a
    chunk, not the file (`rows` may be a stream: `stream_csv`). The first problem stops the
    writing; the rest of the file is still judged, and the savepoint is rolled back, so a file
    with any problem leaves nothing behind, whatever the caller then commits. The rules across
    rows (an invoice repeated, a customer described two ways, an address claimed by two
    customers) keep only keys and digests of the rows already seen.
    """
    report = ImportReport()
    seen = _Seen()
    savepoint = session.begin_nested()
    try:
        chunk: list[ParsedRow] = []
        for line, raw in enumerate(rows, start=2):  # line 1 is the CSV header
            report.rows += 1
            result = parse_row(line, raw, date_shift_days)
            if isinstance(result, list):
                report.errors[line] = result
            else:
                chunk.append(result)
            number = (raw.get("invoice_number") or "").strip()
            first = seen.first_line.setdefault(number, line) if number else line
            if first != line:
                report.errors.setdefault(line, []).append(
                    f"invoice {number} is repeated (first on line {first})"
                )
            if len(chunk) == CHUNK:
                _take(session, chunk, seen, report, progress)
                chunk = []
        _take(session, chunk, seen, report, progress)
    except BaseException:
        savepoint.rollback()
        raise
    if report.errors:
        savepoint.rollback()
        report.debtors_created = report.invoices_created = report.invoices_unchanged = 0
        return report
    if get_settings().identity_check == "customer_number":
        _warn_sequential_customer_numbers(seen.debtors, report)
    report.invoices_unchanged = report.rows - report.invoices_created
    audit.record(
        session,
        actor=actor,
        action="portfolio.imported",
        rows=report.rows,
        debtors_created=report.debtors_created,
        invoices_created=report.invoices_created,
        warnings=report.warnings,
    )
    savepoint.commit()
    return report


def _take(
    session: Session,
    chunk: list[ParsedRow],
    seen: _Seen,
    report: ImportReport,
    progress: Callable[[], None] | None,
) -> None:
    """Judge a chunk of parsed rows against the rows before it and the database; write it while
    the file has no problem so far."""
    if not chunk:
        return
    _check_consistency(chunk, seen.debtors, report)
    _check_contact_owners(session, chunk, seen.claims, report)
    existing = _existing_invoices(session, [p.invoice.number for p in chunk])
    in_parts = _instalment_documents(session, [p.invoice.number for p in chunk])
    for row in chunk:
        current = existing.get(row.invoice.number)
        if seen.first_line.get(row.invoice.number) != row.line:
            continue  # a repeat, reported as such (an earlier chunk may have written the first)
        if row.invoice.number in in_parts:
            report.errors.setdefault(row.line, []).append(
                f"invoice {row.invoice.number} is payable in instalments (imported from its "
                "e-invoice, one invoice per instalment): re-import the e-invoice to change it"
            )
        elif current is not None and not _same_invoice(current, row):
            report.errors.setdefault(row.line, []).append(
                f"invoice {row.invoice.number} already exists with different figures"
            )
    if not report.errors:
        report.invoices_created += _write(session, chunk, existing, seen.merged, report, progress)


def _write(
    session: Session,
    chunk: list[ParsedRow],
    existing: dict[str, _Known],
    merged: set[str],
    report: ImportReport,
    progress: Callable[[], None] | None,
) -> int:
    """Write a chunk of validated rows; returns how many invoices were created.

    One query for its debtors (with their contacts), one bulk INSERT each for the new debtors
    (their ids returned), their contacts and the new invoices: no ORM object is built for them,
    so SQLite too gets one statement per chunk (the ORM inserts one row per statement there when
    it needs the generated ids back). A known debtor's new contacts go through the ORM
    (`merge_contacts`, rare on a re-import) so its loaded contacts stay true. A debtor's contacts
    are merged once, on its first row, as before (a debtor an earlier chunk created is known).
    """
    known = find_debtors(session, [row.debtor.customer_number for row in chunk])
    fresh: dict[str, DebtorData] = {}
    for row in chunk:
        number = row.debtor.customer_number
        if number not in merged:
            merged.add(number)
            if number in known:
                merge_contacts(known[number], row.debtor)
            else:
                fresh[number] = row.debtor
        if progress:
            progress()
    session.flush()  # a known debtor's new contacts
    ids = {number: debtor.id for number, debtor in known.items()}
    if fresh:
        ids.update(
            (number, id_)
            for id_, number in session.execute(
                insert(Debtor).returning(Debtor.id, Debtor.customer_number),
                [debtor_values(data) for data in fresh.values()],
            )
        )
        session.execute(
            insert(Contact),
            [
                {"debtor_id": ids[number], "channel": channel, "address": address}
                for number, data in fresh.items()
                for channel, address in wanted_contacts(data)
            ],
        )
        report.debtors_created += len(fresh)
    new = [
        {"debtor_id": ids[row.debtor.customer_number], **invoice_values(row.invoice)}
        for row in chunk
        if row.invoice.number not in existing
    ]
    if new:
        session.execute(insert(Invoice), new)
    return len(new)


def invoice_values(inv: InvoiceData) -> dict[str, Any]:
    """An invoice's columns from a validated row (status PAID when the row says it is paid)."""
    return {
        "number": inv.number,
        "description": inv.description,
        "amount_minor": inv.amount_minor,
        "paid_minor": inv.paid_minor,
        "currency": inv.currency,
        "issue_date": inv.issue_date,
        "due_date": inv.due_date,
        "status": InvoiceStatus.PAID if inv.paid_minor >= inv.amount_minor else InvoiceStatus.OPEN,
    }


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


def _warn_sequential_customer_numbers(customers: Iterable[str], report: ImportReport) -> None:
    """Under IDENTITY_CHECK=customer_number the number is the debtor's secret (issue 17.1)."""
    pairs = sequential_neighbours(customers)
    if pairs:
        first, second = pairs[0]
        report.warnings.append(
            f"{len(pairs)} customer numbers follow each other (e.g. {first} and {second}); "
            "with IDENTITY_CHECK=customer_number they serve as the identity check and can be "
            "guessed: add a random check part to them, or use IDENTITY_CHECK=postcode"
        )


def _check_consistency(
    parsed: list[ParsedRow], digests: dict[str, bytes], report: ImportReport
) -> None:
    """A customer's rows must describe it alike; `digests` holds each customer's first
    description as a digest (16 bytes, not the row)."""
    for row in parsed:
        digest = hashlib.blake2b(repr(row.debtor).encode(), digest_size=16).digest()
        if digests.setdefault(row.debtor.customer_number, digest) != digest:
            report.errors.setdefault(row.line, []).append(
                f"customer {row.debtor.customer_number} has different details than on an earlier line"
            )


def _check_contact_owners(
    session: Session, parsed: list[ParsedRow], claims: dict[str, str], report: ImportReport
) -> None:
    conflicts = contact_owner_conflicts(session, [row.debtor for row in parsed], claims)
    for row, problems in zip(parsed, conflicts, strict=True):
        if problems:
            report.errors.setdefault(row.line, []).extend(problems)


class _Known(NamedTuple):
    """What the re-import check compares of an invoice already stored."""

    amount_minor: int
    currency: str
    customer_number: str


def _existing_invoices(session: Session, numbers: list[str]) -> dict[str, _Known]:
    """The stored invoices among `numbers`, with their debtor's customer number (one query per
    chunk: reading `invoice.debtor` per invoice cost a query per debtor)."""
    found: dict[str, _Known] = {}
    for start in range(0, len(numbers), CHUNK):
        chunk = numbers[start : start + CHUNK]
        for number, amount, currency, customer in session.execute(
            select(Invoice.number, Invoice.amount_minor, Invoice.currency, Debtor.customer_number)
            .join(Debtor, Invoice.debtor_id == Debtor.id)
            .where(Invoice.number.in_(chunk))
        ):
            found[number] = _Known(amount, currency, customer)
    return found


def _instalment_documents(session: Session, numbers: list[str]) -> set[str]:
    """The numbers among `numbers` of e-invoices imported as instalments ("F (1/3)"...): a row
    of the whole invoice would be a second claim of the same money, from its first date."""
    found: set[str] = set()
    for start in range(0, len(numbers), CHUNK):
        chunk = numbers[start : start + CHUNK]
        found.update(
            number
            for number in session.scalars(
                select(Invoice.instalment_of).where(Invoice.instalment_of.in_(chunk)).distinct()
            )
            if number is not None
        )
    return found


def _same_invoice(invoice: _Known, row: ParsedRow) -> bool:
    return (
        invoice.amount_minor == row.invoice.amount_minor
        and invoice.currency == row.invoice.currency
        and invoice.customer_number == row.debtor.customer_number
    )


def find_debtors(session: Session, customer_numbers: Iterable[str]) -> dict[str, Debtor]:
    """The stored debtors with these customer numbers, their contacts loaded (one query per
    chunk of numbers, plus one for the contacts)."""
    numbers = list(dict.fromkeys(customer_numbers))
    found: dict[str, Debtor] = {}
    for start in range(0, len(numbers), CHUNK):
        for debtor in session.scalars(
            select(Debtor)
            .where(Debtor.customer_number.in_(numbers[start : start + CHUNK]))
            .options(selectinload(Debtor.contacts))
        ):
            found[debtor.customer_number] = debtor
    return found


def new_debtor(data: DebtorData) -> Debtor:
    """A debtor as a row describes it; the caller adds it to the session and merges contacts."""
    return Debtor(**debtor_values(data))


def debtor_values(data: DebtorData) -> dict[str, Any]:
    return {
        "customer_number": data.customer_number,
        "name": data.name,
        "company": data.company,
        "segment": data.segment,
        "risk_class": data.risk_class,
        "language": data.language,
        "timezone": data.timezone,
        "jurisdiction": data.jurisdiction,
        "email": data.email,
        "address_line": data.address_line,
        "postcode": data.postcode,
        "city": data.city,
        "country": data.country,
    }


def merge_contacts(debtor: Debtor, data: DebtorData) -> int:
    """Add the row's phone, WhatsApp and e-mail where the debtor lacks them; returns how many.

    Never removes nor revives one: an opted-out or wrong-person contact keeps its status, and a
    debtor erased on request gets no contact again. The caller has checked that the phone and
    e-mail are no other debtor's (`contact_owner_conflicts`). Nothing is flushed here: the caller
    flushes once for a whole chunk of rows.
    """
    if debtor.name == ERASED:
        return 0  # erased on request: its invoices still import, its contacts never again
    have = {(c.channel, c.address) for c in debtor.contacts}
    added = 0
    for channel, address in wanted_contacts(data):
        if (channel, address) not in have:
            debtor.contacts.append(Contact(channel=channel, address=address, consent=True))
            added += 1
    return added


def wanted_contacts(data: DebtorData) -> list[tuple[str, str]]:
    """The (channel, address) contacts a row gives its debtor, consented (the row says so)."""
    wanted: list[tuple[str, str]] = [(Channel.SMS, data.phone), (Channel.VOICE, data.phone)]
    if data.whatsapp:
        wanted.append((Channel.WHATSAPP, "whatsapp:" + data.whatsapp))
    if data.email:  # validated and normalised by the row parser (email-validator)
        wanted.append((Channel.EMAIL, data.email))
    return wanted


def contact_owner_conflicts(
    session: Session, debtors: Sequence[DebtorData], claims: dict[str, str] | None = None
) -> list[list[str]]:
    """For each debtor's data, in order, why its phone or e-mail cannot be that debtor's (empty
    if they can).

    A phone number or an e-mail address identifies one debtor: sharing it would disclose one debt
    to another person (and the contacts table holds each address once: a shared e-mail used to
    fail the whole import with an IntegrityError instead of a row error). Within the batch the
    first customer to give an address keeps it; in the database any other customer holding it
    wins. One query per 500 addresses, and a dict lookup per row (the earlier per-row scan of
    every taken phone made a full re-import quadratic). `claims` carries the first claims of
    earlier batches of the same file (it is updated).
    """
    first_claim: dict[str, str] = {} if claims is None else claims
    problems: list[list[str]] = []
    for data in debtors:
        found = []
        for kind, address in _addresses(data):
            owner = first_claim.setdefault(address, data.customer_number)
            if owner != data.customer_number:
                found.append(_taken(kind, address, owner))
        problems.append(found)
    holders = contact_holders(
        session, [address for data in debtors for _kind, address in _addresses(data)]
    )
    for data, found in zip(debtors, problems, strict=True):
        found.extend(owner_problems(data, holders, already=found))
    return problems


def contact_holders(session: Session, addresses: Iterable[str]) -> dict[str, set[str]]:
    """Each address's holders in the database, by customer number (every address asked for is a
    key); one query per 500 addresses."""
    wanted = list(dict.fromkeys(addresses))
    holders: dict[str, set[str]] = {address: set() for address in wanted}
    for start in range(0, len(wanted), CHUNK):
        for address, customer_number in session.execute(
            select(Contact.address, Debtor.customer_number)
            .join(Debtor, Contact.debtor_id == Debtor.id)
            .where(Contact.address.in_(wanted[start : start + CHUNK]))
        ):
            holders[address].add(customer_number)
    return holders


def owner_problems(
    data: DebtorData, holders: dict[str, set[str]], already: Sequence[str] = ()
) -> list[str]:
    """The row's phone or e-mail held by another customer in `holders` (which must hold both
    addresses: `contact_holders`), skipping the problems `already` reported."""
    found: list[str] = []
    for kind, address in _addresses(data):
        for owner in sorted(holders[address]):
            problem = _taken(kind, address, owner)
            if owner != data.customer_number and problem not in already and problem not in found:
                found.append(problem)
    return found


def contact_addresses(data: DebtorData) -> list[str]:
    """The addresses `owner_problems` looks up for this row."""
    return [address for _kind, address in _addresses(data)]


def _addresses(data: DebtorData) -> list[tuple[str, str]]:
    return [("phone", data.phone)] + ([("email", data.email)] if data.email else [])


def _taken(kind: str, address: str, owner: str) -> str:
    return f"{kind} {address} already belongs to customer {owner}"
