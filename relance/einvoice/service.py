"""Import e-invoices: each file all-or-nothing, judged by the CSV import's rules.

A document is read (`documents.py`), turned into a row in the CSV importer's vocabulary and checked
by the same `parse_row`; a new invoice is then written by the CSV importer itself
(`relance.portfolio.importer.import_rows`), so a debtor created from an e-invoice is created
exactly as from a CSV row (contacts, phone owners, erased debtors). What the CSV does not know is
added here: the debtor's SIREN/SIRET and VAT number, the payment terms and late-payment mentions,
and the original file, kept as the invoice's evidence.

Re-importing an invoice updates it (amount, dates, terms, document) and never duplicates it; a
credit note reduces the credited invoice's balance through the ledger (a `credit_note` payment
allocated to that invoice), once per credit-note number. Each file runs in its own savepoint: a
file with any problem changes nothing, the others still import.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from relance import audit
from relance.db.models import Debtor, Invoice
from relance.db.models.enums import Channel, InvoiceStatus
from relance.einvoice.bundle import MAX_FILE_BYTES, Source, kind
from relance.einvoice.documents import DocumentError, EInvoice, read_facturx, read_xml
from relance.ledger.service import find_payment, record_payment
from relance.portfolio.importer import import_rows, merge_contacts, phone_owner_conflicts
from relance.portfolio.rows import MAX_LENGTHS, ParsedRow, parse_row, to_minor
from relance.private_files import private_dir, write_private
from relance.settings import get_settings

# How the CSV columns are called in an e-invoice (EN 16931 business terms), for the report.
FIELDS = {
    "customer_number": "buyer identifier (BT-46)",
    "name": "buyer name (BT-44)",
    "phone": "buyer phone (BT-57)",
    "email": "buyer e-mail (BT-58)",
    "invoice_number": "invoice number (BT-1)",
    "amount": "invoice total with VAT (BT-112)",
    "paid_amount": "paid amount (BT-113)",
    "currency": "invoice currency (BT-5)",
    "issue_date": "issue date (BT-2)",
    "due_date": "due date (BT-9)",
    "address_line": "buyer address line (BT-50)",
    "postcode": "buyer post code (BT-53)",
    "city": "buyer city (BT-52)",
    "country": "buyer country (BT-55)",
    "company": "buyer name (BT-44)",
    "description": "payment terms (BT-20)",
}
LEGAL_DEFAULT_DAYS = 30  # Code de commerce L441-10: 30 days after receipt when nothing is agreed
MAX_TERMS = 500


@dataclass(frozen=True)
class Problem:
    field: str
    message: str


@dataclass
class FileReport:
    """One file's outcome: created, updated, unchanged, credited, or rejected with `problems`."""

    name: str
    status: str = "rejected"
    format: str = ""
    profile: str = ""
    invoice_number: str = ""
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class EInvoiceReport:
    files: list[FileReport] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def ok(self) -> bool:
        return self.count("rejected") == 0


class _Rejected(Exception):
    def __init__(self, *problems: Problem) -> None:
        super().__init__(problems[0].message if problems else "rejected")
        self.problems = list(problems)


def import_sources(
    session: Session, sources: Iterable[Source], *, actor: str, store_dir: Path | None = None
) -> EInvoiceReport:
    """Import every document; the caller commits. A rejected file leaves no trace but its report."""
    report = EInvoiceReport()
    seen: dict[str, str] = {}
    folder = store_dir or (get_settings().var_dir / "einvoices")
    for source in sources:
        entry = FileReport(name=source.name)
        report.files.append(entry)
        savepoint = session.begin_nested()
        try:
            if source.problem:
                raise _Rejected(Problem("file", source.problem))
            _import_one(session, source, entry, seen, folder, actor)
        except _Rejected as rejected:
            savepoint.rollback()
            entry.status = "rejected"
            entry.problems = rejected.problems
            continue
        except IntegrityError:  # another import wrote the same invoice or debtor meanwhile
            savepoint.rollback()
            entry.status = "rejected"
            entry.problems = [Problem("file", "written meanwhile by another import; retry")]
            continue
        savepoint.commit()
        seen[entry.invoice_number] = source.name
    return report


def read_document(source: Source) -> EInvoice:
    if len(source.data) > MAX_FILE_BYTES:
        raise DocumentError("file", f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    found = kind(source.data)
    if found == "pdf":
        return read_facturx(source.data)
    if found == "xml":
        return read_xml(source.data)
    raise DocumentError("file", "neither a PDF nor an XML document (Factur-X, UBL or CII)")


def _import_one(
    session: Session,
    source: Source,
    entry: FileReport,
    seen: dict[str, str],
    folder: Path,
    actor: str,
) -> None:
    try:
        doc = read_document(source)
    except DocumentError as exc:
        raise _Rejected(Problem(exc.field, exc.message)) from None
    entry.format, entry.profile, entry.invoice_number = doc.format, doc.profile, doc.number
    if not doc.number:
        raise _Rejected(Problem(FIELDS["invoice_number"], "the document has no invoice number"))
    if doc.number in seen:
        raise _Rejected(
            Problem(FIELDS["invoice_number"], f"{doc.number} is also in {seen[doc.number]}")
        )
    _check_currencies(doc)
    if doc.is_credit_note:
        _credit(session, doc, source, entry, folder, actor)
        return
    debtor = _find_debtor(session, doc)
    row = _row(doc, debtor, entry)
    parsed = parse_row(0, row)
    if isinstance(parsed, list):
        raise _Rejected(*[_problem(message) for message in parsed])
    existing = session.scalars(select(Invoice).where(Invoice.number == doc.number)).first()
    if existing is None:
        result = import_rows(session, [row], actor=actor)
        if not result.ok:
            messages = [m for msgs in result.errors.values() for m in msgs]
            raise _Rejected(*[_problem(m) for m in messages])
        entry.warnings += result.warnings
        invoice = session.scalars(select(Invoice).where(Invoice.number == doc.number)).one()
        entry.status = "created"
    else:
        invoice = existing
        entry.status = _update(existing, parsed.invoice.amount_minor, parsed, debtor)
        # A new version of the invoice may carry the buyer's new phone or e-mail: added as a CSV
        # re-import would add them, behind the same check that the phone is no one else's.
        conflicts = phone_owner_conflicts(session, [parsed.debtor])[0]
        if conflicts:
            raise _Rejected(*[Problem(FIELDS["phone"], c) for c in conflicts])
        if merge_contacts(session, existing.debtor, parsed.debtor) and entry.status == "unchanged":
            entry.status = "updated"
    _identify(invoice.debtor, doc)
    path = _store(folder, source)
    terms, late = doc.payment_terms[:MAX_TERMS] or None, doc.late_payment_terms[:MAX_TERMS] or None
    if entry.status == "unchanged" and (
        invoice.payment_terms != terms
        or invoice.late_payment_terms != late
        or invoice.document_path != str(path)
    ):
        entry.status = "updated"
    invoice.payment_terms, invoice.late_payment_terms = terms, late
    invoice.document_path = str(path)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"einvoice.{entry.status}",
        entity=invoice,
        debtor_id=invoice.debtor_id,
        file=source.name,
        format=doc.format,
        profile=doc.profile,
        sha256=path.stem,
    )


def _check_currencies(doc: EInvoice) -> None:
    others = sorted(c for c in doc.amount_currencies if c != doc.currency)
    if others:
        raise _Rejected(
            Problem(
                FIELDS["currency"],
                f"amounts are in {', '.join(others)} but the invoice currency is "
                f"'{doc.currency or 'missing'}'",
            )
        )


def _problem(message: str) -> Problem:
    """A CSV rule's message, with the column named as the e-invoice's business term."""
    column = next((c for c in sorted(FIELDS, key=len, reverse=True) if message.startswith(c)), "")
    return Problem(FIELDS.get(column, "invoice"), message)


def _legal_ids(doc: EInvoice) -> tuple[str, str]:
    """(SIREN, SIRET) from the buyer's legal registration (BT-47), digits only."""
    digits = "".join(ch for ch in doc.buyer.legal_id if ch.isdigit())
    if len(digits) == 14:
        return digits[:9], digits
    if len(digits) == 9:
        return digits, ""
    return "", ""


def _find_debtor(session: Session, doc: EInvoice) -> Debtor | None:
    """The debtor this buyer is: by SIRET, SIREN, VAT number, then customer number (BT-46)."""
    siren, siret = _legal_ids(doc)
    tests = []
    if siret:
        tests.append(Debtor.siret == siret)
    if siren:
        tests.append(Debtor.siren == siren)
    if doc.buyer.vat_number:
        tests.append(Debtor.vat_number == doc.buyer.vat_number.replace(" ", "").upper())
    if doc.buyer.identifier:
        tests.append(Debtor.customer_number == doc.buyer.identifier)
    if not tests:
        return None
    candidates = list(session.scalars(select(Debtor).where(or_(*tests)).limit(10)))
    for wanted in (siret, siren, doc.buyer.vat_number, doc.buyer.identifier):
        for debtor in candidates:
            if wanted and wanted in (
                debtor.siret,
                debtor.siren,
                debtor.vat_number,
                debtor.customer_number,
            ):
                return debtor
    return None


def _row(doc: EInvoice, debtor: Debtor | None, entry: FileReport) -> dict[str, str | None]:
    """The document as a CSV row; a known debtor supplies what the document leaves out."""
    siren, _siret = _legal_ids(doc)
    buyer = doc.buyer
    phone = buyer.phone
    if debtor is None:
        customer_number = buyer.identifier or siren or buyer.vat_number.replace(" ", "").upper()
        if not customer_number or not phone:
            raise _Rejected(
                Problem(
                    "buyer",
                    "unknown debtor: no debtor has "
                    + ", ".join(
                        f"{label} {value}"
                        for label, value in (
                            ("SIREN/SIRET", buyer.legal_id),
                            ("VAT number", buyer.vat_number),
                            ("customer number", buyer.identifier),
                        )
                        if value
                    )
                    + (
                        ", and the invoice carries no buyer phone to create one "
                        "(import the debtor by CSV first)"
                        if not phone
                        else ", and the invoice names no identifier for a new one"
                    ),
                )
            )
    else:
        customer_number = debtor.customer_number
        if not phone:
            phone = next((c.address for c in debtor.contacts if c.channel == Channel.SMS), "")
    due = doc.due_date
    if not due and doc.issue_date:
        try:
            due = (
                date.fromisoformat(doc.issue_date) + timedelta(days=LEGAL_DEFAULT_DAYS)
            ).isoformat()
        except ValueError:
            due = ""
        else:
            entry.warnings.append(
                f"no due date in the document: the legal {LEGAL_DEFAULT_DAYS} days after issue "
                "apply (Code de commerce L441-10)"
            )
    description = (doc.payment_terms or (doc.notes[0] if doc.notes else ""))[
        : MAX_LENGTHS["description"]
    ]
    return {
        "customer_number": customer_number,
        "name": buyer.name or (debtor.name if debtor else ""),
        "company": buyer.name if (siren or buyer.vat_number) else None,
        "segment": "b2b" if (siren or buyer.vat_number) else (debtor.segment if debtor else None),
        "phone": phone,
        "email": buyer.email or None,
        "address_line": buyer.address_line or None,
        "postcode": buyer.postcode or None,
        "city": buyer.city or None,
        "country": buyer.country or (debtor.country if debtor else None),
        "invoice_number": doc.number,
        "description": description or None,
        "amount": doc.total,
        "paid_amount": doc.prepaid or None,
        "currency": doc.currency,
        "issue_date": doc.issue_date,
        "due_date": due,
    }


def _update(invoice: Invoice, amount_minor: int, parsed: ParsedRow, debtor: Debtor | None) -> str:
    """A second version of a known invoice: same debtor and currency, else refused."""
    number = FIELDS["invoice_number"]
    if debtor is None or invoice.debtor_id != debtor.id:
        raise _Rejected(
            Problem(number, f"invoice {invoice.number} already exists for another debtor")
        )
    if invoice.currency != parsed.invoice.currency:
        raise _Rejected(
            Problem(
                FIELDS["currency"],
                f"wrong currency: invoice {invoice.number} is in {invoice.currency}, "
                f"this document says {parsed.invoice.currency}",
            )
        )
    if amount_minor < invoice.paid_minor:
        raise _Rejected(
            Problem(
                FIELDS["amount"],
                f"the new total is below what was already paid on {invoice.number}; "
                "send a credit note instead",
            )
        )
    new = (amount_minor, parsed.invoice.issue_date, parsed.invoice.due_date)
    if new == (invoice.amount_minor, invoice.issue_date, invoice.due_date):
        return "unchanged"
    invoice.amount_minor, invoice.issue_date, invoice.due_date = new
    if invoice.balance_minor == 0 and invoice.status == InvoiceStatus.OPEN:
        invoice.status = InvoiceStatus.PAID
    elif invoice.balance_minor > 0 and invoice.status == InvoiceStatus.PAID:
        invoice.status, invoice.paid_at = InvoiceStatus.OPEN, None
    return "updated"


def _credit(
    session: Session, doc: EInvoice, source: Source, entry: FileReport, folder: Path, actor: str
) -> None:
    """A credit note: a `credit_note` payment allocated to the credited invoice (BT-25)."""
    reference = "preceding invoice (BT-25)"
    if not doc.preceding_invoice:
        raise _Rejected(Problem(reference, "a credit note must name the invoice it credits"))
    invoice = session.scalars(
        select(Invoice).where(Invoice.number == doc.preceding_invoice)
    ).first()
    if invoice is None:
        raise _Rejected(
            Problem(reference, f"credits invoice {doc.preceding_invoice}, which is not imported")
        )
    debtor = _find_debtor(session, doc)
    if debtor is not None and debtor.id != invoice.debtor_id:
        raise _Rejected(Problem("buyer", "the credit note's buyer is not the invoice's debtor"))
    if doc.currency != invoice.currency:
        raise _Rejected(
            Problem(
                FIELDS["currency"],
                f"wrong currency: invoice {invoice.number} is in {invoice.currency}, "
                f"the credit note in {doc.currency or 'no currency'}",
            )
        )
    problems: list[str] = []
    amount = to_minor(doc.total, doc.currency, "amount", problems) if doc.total else None
    if amount is None or amount <= 0:
        raise _Rejected(*[_problem(p) for p in problems or ["amount must be positive"]])
    provider_ref = f"credit-note:{doc.number}"
    if find_payment(session, provider_ref) is not None:
        entry.status = "unchanged"
        return
    if debtor is None:
        debtor = invoice.debtor
    path = _store(folder, source)
    record_payment(
        session,
        debtor_id=invoice.debtor_id,
        amount_minor=amount,
        currency=doc.currency,
        method="credit_note",
        provider="einvoice",
        provider_ref=provider_ref,
        invoice_ids=[invoice.id],
        recorded_by=actor,
        thank=False,
    )
    entry.status = "credited"
    audit.record(
        session,
        actor=actor,
        action="einvoice.credited",
        entity=invoice,
        debtor_id=invoice.debtor_id,
        credit_note=doc.number,
        amount_minor=amount,
        file=source.name,
        sha256=path.stem,
    )


def _identify(debtor: Debtor, doc: EInvoice) -> None:
    """Keep the legal identifiers the document gives, where the debtor has none yet."""
    siren, siret = _legal_ids(doc)
    debtor.siren = debtor.siren or siren or None
    debtor.siret = debtor.siret or siret or None
    vat = doc.buyer.vat_number.replace(" ", "").upper()[:32]
    debtor.vat_number = debtor.vat_number or vat or None


def _store(folder: Path, source: Source) -> Path:
    """The original file, by content hash (a re-import writes the same path), owner-only."""
    digest = hashlib.sha256(source.data).hexdigest()
    suffix = ".pdf" if kind(source.data) == "pdf" else ".xml"
    path = private_dir(folder) / f"{digest}{suffix}"
    if not path.exists():
        write_private(path, source.data)
    return path
