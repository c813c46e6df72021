"""Import e-invoices: each file all-or-nothing, judged by the CSV import's rules.

A document is read (`documents.py`), turned into a row in the CSV importer's vocabulary and checked
by the same `parse_row`; a new invoice is then written by the CSV importer itself
(`relance.portfolio.importer.import_rows`), so a debtor created from an e-invoice is created
exactly as from a CSV row (contacts, phone owners, erased debtors). What the CSV does not know is
added here: the debtor's SIREN/SIRET and VAT number, the payment terms and late-payment mentions,
and the original file, kept as the invoice's evidence.

Re-importing an invoice updates it (amount, dates, terms, document) and never duplicates it; a
credit note reduces the credited invoice's balance through the ledger (a `credit_note` payment
allocated to that invoice), once per credit-note number. A file with any problem changes nothing,
the others still import.

Files go through in chunks of `CHUNK`: the chunk's documents are read first, then one query each
finds their known invoices, their debtors (by every identifier a document may give) and the
holders of their phones and e-mails; each new invoice is judged in memory against that and
against the files accepted before it, and the accepted ones are written with one flush. A rejected
file is never added to the session, so nothing of it is written. Updates and credit notes, rare,
keep a savepoint each. If the chunk's write still breaks a unique constraint (another import wrote
the same invoice or contact meanwhile), the chunk is rolled back and redone file by file, so only
the colliding file is rejected. A savepoint and a handful of queries per file made the import
spend ~33 ms per file in SQLAlchemy round trips.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from babel.numbers import get_currency_precision
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from relance import audit
from relance.contacts.email_address import normalise_email
from relance.db.models import Debtor, Invoice
from relance.db.models.enums import Channel, InvoiceStatus
from relance.einvoice.bundle import MAX_FILE_BYTES, Source, kind
from relance.einvoice.documents import DocumentError, EInvoice, read_facturx, read_xml
from relance.errors import BadInput
from relance.ledger.service import find_payment, record_payment
from relance.portfolio.importer import (
    contact_addresses,
    contact_holders,
    contact_owner_conflicts,
    invoice_values,
    merge_contacts,
    new_debtor,
    owner_problems,
)
from relance.portfolio.rows import MAX_LENGTHS, ParsedRow, normalise_phone, parse_row, to_minor
from relance.private_files import einvoice_dir, private_dir, write_private
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
INSTALMENTS = "instalments (payment terms BT-20, due dates BT-9)"
CHUNK = 500  # files read, looked up and written together (500 values per IN (...) query)
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
    run = _Run(session, actor, store_dir or einvoice_dir(get_settings().var_dir))
    for chunk in _chunks(sources):
        report.files += _import_chunk(run, chunk)
    return report


@dataclass
class _Run:
    session: Session
    actor: str
    folder: Path
    seen: dict[str, str] = field(default_factory=dict)  # invoice number -> file that imported it


def _chunks(sources: Iterable[Source]) -> Iterator[list[Source]]:
    chunk: list[Source] = []
    for source in sources:
        chunk.append(source)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _import_chunk(run: _Run, sources: list[Source]) -> list[FileReport]:
    """One chunk in a savepoint; redone file by file if its write breaks a unique constraint."""
    savepoint = run.session.begin_nested()
    chunk = _Chunk(run)
    try:
        entries = chunk.import_all(sources)
    except IntegrityError:  # another import wrote the same invoice or contact meanwhile
        savepoint.rollback()
        for number in chunk.accepted:
            del run.seen[number]
        if len(sources) > 1:
            return [entry for source in sources for entry in _import_chunk(run, [source])]
        problem = Problem("file", "written meanwhile by another import; retry")
        return [FileReport(name=sources[0].name, problems=[problem])]
    savepoint.commit()
    return entries


@dataclass
class _New:
    """An accepted new invoice, added to the session, waiting for the chunk's flush."""

    source: Source
    entry: FileReport
    doc: EInvoice
    invoices: list[Invoice]  # the invoice, or one row per instalment
    path: Path


class _Chunk:
    """The files of one chunk, judged in order against what one query each found (`import_all`)."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.session = run.session
        self.accepted: list[str] = []  # invoice numbers this chunk added to `run.seen`
        self.pending: list[_New] = []
        self.debtors_created = 0
        self.debtors = _DebtorIndex()
        self.holders: dict[str, set[str]] = {}
        self.known: set[str] = set()

    def import_all(self, sources: list[Source]) -> list[FileReport]:
        read: list[tuple[Source, FileReport, EInvoice]] = []
        entries = []
        for source in sources:
            entry = FileReport(name=source.name)
            entries.append(entry)
            try:
                read.append((source, entry, _read(source, entry)))
            except _Rejected as rejected:
                entry.problems = rejected.problems
        docs = [doc for _source, _entry, doc in read]
        self.known = _known_invoices(self.session, [doc.number for doc in docs])
        self.debtors = _DebtorIndex.load(self.session, docs)
        self.holders = contact_holders(self.session, _likely_addresses(docs))
        for source, entry, doc in read:
            try:
                if doc.number in self.run.seen:
                    raise _Rejected(
                        Problem(
                            FIELDS["invoice_number"],
                            f"{doc.number} is also in {self.run.seen[doc.number]}",
                        )
                    )
                _check_currencies(doc)
                if doc.is_credit_note or doc.number in self.known:
                    self._one_by_one(source, entry, doc)
                else:
                    self._new(source, entry, doc)
            except _Rejected as rejected:
                entry.status = "rejected"
                entry.problems = rejected.problems
                continue
            self.run.seen[doc.number] = source.name
            self.accepted.append(doc.number)
        self._write()
        return entries

    def _new(self, source: Source, entry: FileReport, doc: EInvoice) -> None:
        """Judge a new invoice as `import_rows` would judge its row alone, then add it (no SQL)."""
        debtor = self.debtors.find(doc)
        row = _row(doc, debtor, entry)
        parsed = parse_row(0, row)
        if isinstance(parsed, list):
            raise _Rejected(*[_problem(message) for message in parsed])
        parts = _parts(doc, parsed)
        data = parsed.debtor
        # `import_rows` would write to the debtor holding the row's customer number.
        debtor = debtor or self.debtors.by_customer_number(data.customer_number)
        missing = [a for a in contact_addresses(data) if a not in self.holders]
        if missing:  # a phone read differently than `_likely_addresses` guessed
            self.holders.update(contact_holders(self.session, missing))
        problems = owner_problems(data, self.holders)
        if problems:
            raise _Rejected(*[_problem(message) for message in problems])
        # Accepted: from here on nothing raises _Rejected.
        if debtor is None:
            debtor = new_debtor(data)
            self.session.add(debtor)
            self.debtors_created += 1
        merge_contacts(debtor, data)
        for address in contact_addresses(data):
            self.holders[address].add(data.customer_number)
        _identify(debtor, doc)
        self.debtors.add(debtor)
        path = _path(self.run.folder, source)
        invoices = []
        for part in parts:
            invoice = Invoice(
                debtor=debtor,
                **invoice_values(parsed.invoice),
                payment_terms=doc.payment_terms[:MAX_TERMS] or None,
                late_payment_terms=doc.late_payment_terms[:MAX_TERMS] or None,
                document_path=str(path),
            )
            part.apply(invoice)
            self.session.add(invoice)
            invoices.append(invoice)
        entry.status = "created"
        if len(parts) > 1:
            entry.warnings.append(_schedule_line(parts, doc.currency))
        self.pending.append(_New(source, entry, doc, invoices, path))

    def _one_by_one(self, source: Source, entry: FileReport, doc: EInvoice) -> None:
        """An update or a credit note, in its own savepoint, after the new invoices before it."""
        self._write()
        savepoint = self.session.begin_nested()
        try:
            if doc.is_credit_note:
                _credit(self.session, doc, source, entry, self.run.folder, self.run.actor)
                debtor = None
            else:
                debtor = _update_one(self.session, source, entry, doc, self.run)
        except _Rejected:
            savepoint.rollback()
            raise
        except IntegrityError:
            savepoint.rollback()
            raise _Rejected(Problem("file", "written meanwhile by another import; retry")) from None
        savepoint.commit()
        if debtor is not None:  # its identifiers and contacts may be new: later files see them
            self.debtors.add(debtor)
            for contact in debtor.contacts:
                if contact.address in self.holders:
                    self.holders[contact.address].add(debtor.customer_number)

    def _write(self) -> None:
        """Flush the accepted new invoices (debtors, contacts, invoices: one INSERT each), then
        their audit rows, then keep their originals on disk."""
        if not self.pending:
            return
        self.session.flush()
        actor = self.run.actor
        for new in self.pending:
            for invoice in new.invoices:
                audit.record(
                    self.session,
                    actor=actor,
                    action="einvoice.created",
                    entity=invoice,
                    debtor_id=invoice.debtor_id,
                    file=new.source.name,
                    format=new.doc.format,
                    profile=new.doc.profile,
                    sha256=new.path.stem,
                )
        audit.record(
            self.session,
            actor=actor,
            action="portfolio.imported",
            rows=len(self.pending),
            debtors_created=self.debtors_created,
            invoices_created=sum(len(new.invoices) for new in self.pending),
            warnings=[],
        )
        self.session.flush()
        for new in self.pending:
            _keep(new.path, new.source)
        self.pending, self.debtors_created = [], 0


class _DebtorIndex:
    """The debtors a chunk's documents may name, by each identifier `_find_debtor` tries.

    Loaded with one query per chunk; the debtors the chunk creates or identifies are added as it
    goes, so the next file of the same buyer finds them as the per-file query did.
    """

    def __init__(self) -> None:
        self._by: dict[tuple[str, str], list[Debtor]] = {}

    @classmethod
    def load(cls, session: Session, docs: list[EInvoice]) -> _DebtorIndex:
        index = cls()
        sirets, sirens, vats, numbers = set(), set(), set(), set()
        for doc in docs:
            siren, siret = _legal_ids(doc)
            sirets.add(siret)
            sirens.add(siren)
            vats.add(_vat(doc))
            numbers |= {doc.buyer.identifier, siren, _vat(doc)}  # `_row`'s customer numbers
        tests = [
            column.in_(sorted(values - {""}))
            for column, values in (
                (Debtor.siret, sirets),
                (Debtor.siren, sirens),
                (Debtor.vat_number, vats),
                (Debtor.customer_number, numbers),
            )
            if values - {""}
        ]
        if tests:
            query = select(Debtor).where(or_(*tests)).options(selectinload(Debtor.contacts))
            for debtor in session.scalars(query.order_by(Debtor.id)):
                index.add(debtor)
        return index

    def add(self, debtor: Debtor) -> None:
        for key in _keys(debtor.siret, debtor.siren, debtor.vat_number, debtor.customer_number):
            found = self._by.setdefault(key, [])
            if all(known is not debtor for known in found):
                found.append(debtor)

    def find(self, doc: EInvoice) -> Debtor | None:
        siren, siret = _legal_ids(doc)
        candidates: list[Debtor] = []
        for key in _keys(siret, siren, _vat(doc), doc.buyer.identifier):
            for debtor in self._by.get(key, ()):
                if all(known is not debtor for known in candidates):
                    candidates.append(debtor)
        return _pick(candidates, doc)

    def by_customer_number(self, number: str) -> Debtor | None:
        found = self._by.get(("customer_number", number))
        return found[0] if found else None


def _keys(
    siret: str | None, siren: str | None, vat: str | None, customer_number: str | None
) -> list[tuple[str, str]]:
    pairs = [
        ("siret", siret),
        ("siren", siren),
        ("vat_number", vat),
        ("customer_number", customer_number),
    ]
    return [(name, value) for name, value in pairs if value]


def _read(source: Source, entry: FileReport) -> EInvoice:
    """The document, if it is one and has a number (its other checks come in file order)."""
    if source.problem:
        raise _Rejected(Problem("file", source.problem))
    try:
        doc = read_document(source)
    except DocumentError as exc:
        raise _Rejected(Problem(exc.field, exc.message)) from None
    entry.format, entry.profile, entry.invoice_number = doc.format, doc.profile, doc.number
    if not doc.number:
        raise _Rejected(Problem(FIELDS["invoice_number"], "the document has no invoice number"))
    return doc


def _known_invoices(session: Session, numbers: list[str]) -> set[str]:
    """The documents already imported: as one invoice, or as its instalments."""
    found: set[str] = set()
    for start in range(0, len(numbers), CHUNK):
        chunk = numbers[start : start + CHUNK]
        found.update(session.scalars(select(Invoice.number).where(Invoice.number.in_(chunk))))
        found.update(
            number
            for number in session.scalars(
                select(Invoice.instalment_of).where(Invoice.instalment_of.in_(chunk)).distinct()
            )
            if number is not None
        )
    return found


def _likely_addresses(docs: list[EInvoice]) -> list[str]:
    """The buyers' phones and e-mails as `parse_row` will normalise them, to look their holders
    up in one query; one it normalises otherwise is looked up when met."""
    addresses = []
    for doc in docs:
        buyer = doc.buyer
        if buyer.phone:
            phone = normalise_phone(buyer.phone, (buyer.country or "FR").upper())
            if phone:
                addresses.append(phone)
        if buyer.email:
            with contextlib.suppress(BadInput):  # not an address: `parse_row` reports it
                addresses.append(normalise_email(buyer.email))
    return addresses


def read_document(source: Source) -> EInvoice:
    if len(source.data) > MAX_FILE_BYTES:
        raise DocumentError("file", f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    found = kind(source.data)
    if found == "pdf":
        return read_facturx(source.data)
    if found == "xml":
        return read_xml(source.data)
    raise DocumentError("file", "neither a PDF nor an XML document (Factur-X, UBL or CII)")


def _update_one(
    session: Session, source: Source, entry: FileReport, doc: EInvoice, run: _Run
) -> Debtor:
    """A new version of a stored invoice; returns its debtor. The caller holds a savepoint."""
    debtor = _find_debtor(session, doc)
    row = _row(doc, debtor, entry)
    parsed = parse_row(0, row)
    if isinstance(parsed, list):
        raise _Rejected(*[_problem(message) for message in parsed])
    parts = _parts(doc, parsed)
    stored = _stored_parts(session, doc.number)
    _same_schedule_shape(doc.number, stored, parts)
    statuses = [_update(inv, part, parsed, debtor) for inv, part in zip(stored, parts, strict=True)]
    entry.status = "updated" if "updated" in statuses else "unchanged"
    if len(parts) > 1 and entry.status == "updated":
        entry.warnings.append("instalment schedule changed: " + _schedule_line(parts, doc.currency))
    invoice = stored[0]
    # A new version of the invoice may carry the buyer's new phone or e-mail: added as a CSV
    # re-import would add them, behind the same check that they are no one else's.
    conflicts = contact_owner_conflicts(session, [parsed.debtor])[0]
    if conflicts:
        raise _Rejected(*[_problem(c) for c in conflicts])
    if merge_contacts(invoice.debtor, parsed.debtor) and entry.status == "unchanged":
        entry.status = "updated"
    _identify(invoice.debtor, doc)
    path = _store(run.folder, source)
    terms, late = doc.payment_terms[:MAX_TERMS] or None, doc.late_payment_terms[:MAX_TERMS] or None
    if entry.status == "unchanged" and (
        invoice.payment_terms != terms
        or invoice.late_payment_terms != late
        or invoice.document_path != str(path)
    ):
        entry.status = "updated"
    for each in stored:
        each.payment_terms, each.late_payment_terms = terms, late
        each.document_path = str(path)
    session.flush()
    for each in stored:
        audit.record(
            session,
            actor=run.actor,
            action=f"einvoice.{entry.status}",
            entity=each,
            debtor_id=each.debtor_id,
            file=source.name,
            format=doc.format,
            profile=doc.profile,
            sha256=path.stem,
        )
    owner: Debtor = invoice.debtor
    return owner


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


def _vat(doc: EInvoice) -> str:
    return doc.buyer.vat_number.replace(" ", "").upper()


def _find_debtor(session: Session, doc: EInvoice) -> Debtor | None:
    """The debtor this buyer is: by SIRET, SIREN, VAT number, then customer number (BT-46)."""
    siren, siret = _legal_ids(doc)
    tests = []
    if siret:
        tests.append(Debtor.siret == siret)
    if siren:
        tests.append(Debtor.siren == siren)
    if doc.buyer.vat_number:
        tests.append(Debtor.vat_number == _vat(doc))
    if doc.buyer.identifier:
        tests.append(Debtor.customer_number == doc.buyer.identifier)
    if not tests:
        return None
    return _pick(list(session.scalars(select(Debtor).where(or_(*tests)).limit(10))), doc)


def _pick(candidates: list[Debtor], doc: EInvoice) -> Debtor | None:
    """Among the debtors sharing an identifier with the buyer, the one matched by the strongest:
    SIRET, SIREN, VAT number, customer number."""
    siren, siret = _legal_ids(doc)
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
    # Payable in instalments: the row's due date is the first one (each row gets its own).
    due = min(i.due_date for i in doc.instalments) if doc.instalments else doc.due_date
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


def _update(invoice: Invoice, part: _Part, parsed: ParsedRow, debtor: Debtor | None) -> str:
    """A second version of a known invoice (or of one of its instalments): same debtor and
    currency, else refused."""
    amount_minor = part.amount_minor
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
    new = (amount_minor, parsed.invoice.issue_date, part.due_date)
    if new == (invoice.amount_minor, invoice.issue_date, invoice.due_date):
        return "unchanged"
    invoice.amount_minor, invoice.issue_date, invoice.due_date = new
    if invoice.balance_minor == 0 and invoice.status == InvoiceStatus.OPEN:
        invoice.status = InvoiceStatus.PAID
    elif invoice.balance_minor > 0 and invoice.status == InvoiceStatus.PAID:
        invoice.status, invoice.paid_at = InvoiceStatus.OPEN, None
    return "updated"


@dataclass(frozen=True)
class _Part:
    """One invoice row a document makes: the whole invoice, or its instalment `no` (of `of`)."""

    number: str
    amount_minor: int
    paid_minor: int
    due_date: date
    no: int | None = None
    of: str | None = None  # the document's number, for an instalment

    def apply(self, invoice: Invoice) -> None:
        invoice.number, invoice.due_date = self.number, self.due_date
        invoice.amount_minor, invoice.paid_minor = self.amount_minor, self.paid_minor
        invoice.status = (
            InvoiceStatus.PAID if self.paid_minor >= self.amount_minor else InvoiceStatus.OPEN
        )
        invoice.instalment_no = self.no
        invoice.instalment_of = self.of


def _parts(doc: EInvoice, parsed: ParsedRow) -> list[_Part]:
    """The rows the document makes: itself, or one per instalment, numbered "<number> (k/n)" in
    due-date order, each owing only its own amount from its own date.

    The instalments must add up to the amount due (BT-115: total less what was paid, BT-113):
    otherwise which part is owed when is unknown, and the file is refused as a whole."""
    inv = parsed.invoice
    if not doc.instalments:
        return [_Part(inv.number, inv.amount_minor, inv.paid_minor, inv.due_date)]
    problems: list[str] = []
    read: list[tuple[date, int]] = []
    for index, instalment in enumerate(doc.instalments, start=1):
        amount = to_minor(instalment.amount, inv.currency, f"instalment {index} amount", problems)
        try:
            due = date.fromisoformat(instalment.due_date)
        except ValueError:
            problems.append(
                f"instalment {index} due date '{instalment.due_date}' is not a date (YYYY-MM-DD)"
            )
            continue
        if amount is not None and amount <= 0:
            problems.append(f"instalment {index} amount must be positive")
        elif amount is not None:
            read.append((due, amount))
    if problems:
        raise _Rejected(*[Problem(INSTALMENTS, p) for p in problems])
    owed = inv.amount_minor - inv.paid_minor
    if sum(amount for _due, amount in read) != owed:
        raise _Rejected(
            Problem(
                INSTALMENTS,
                f"the {len(read)} instalments add up to "
                f"{_money(sum(a for _d, a in read), inv.currency)} {inv.currency}, but the amount "
                f"due is {_money(owed, inv.currency)} {inv.currency} (total less paid): "
                "nothing imported",
            )
        )
    count = len(read)
    ordered = sorted(read, key=lambda part: part[0])  # stable: same dates keep document order
    parts = [
        _Part(f"{inv.number} ({no}/{count})", amount, 0, due, no, inv.number)
        for no, (due, amount) in enumerate(ordered, start=1)
    ]
    too_long = MAX_LENGTHS["invoice_number"]
    if len(parts[-1].number) > too_long:
        raise _Rejected(
            Problem(
                FIELDS["invoice_number"],
                f"{inv.number} is too long to number its instalments "
                f"('{parts[-1].number}' is over {too_long} characters)",
            )
        )
    return parts


def _stored_parts(session: Session, number: str) -> list[Invoice]:
    """The rows an imported document made: its invoice, or its instalments in order."""
    return list(
        session.scalars(
            select(Invoice)
            .where(or_(Invoice.number == number, Invoice.instalment_of == number))
            .order_by(Invoice.instalment_no, Invoice.id)
        )
    )


def _same_schedule_shape(number: str, stored: list[Invoice], parts: list[_Part]) -> None:
    """A new version may move an instalment's date or amount, not add or remove instalments:
    those rows carry payments, reminders and RF references a renumbering would break."""
    if len(stored) == len(parts) and all(
        inv.instalment_no == part.no for inv, part in zip(stored, parts, strict=True)
    ):
        return
    before = len(stored) if stored[0].instalment_no else 1
    after = len(parts) if parts[0].no else 1
    raise _Rejected(
        Problem(
            INSTALMENTS,
            f"{number} was imported payable in {before} instalment(s), this version in {after}: "
            "a changed number of instalments is not applied; cancel the invoice and issue a "
            "new one",
        )
    )


def _money(minor: int, currency: str) -> str:
    precision = get_currency_precision(currency)
    return str((Decimal(minor) / (Decimal(10) ** precision)).quantize(Decimal(10) ** -precision))


def _schedule_line(parts: list[_Part], currency: str) -> str:
    """The schedule as the report says it: 'payable in 3 instalments: 400.00 EUR on ...'."""
    return f"payable in {len(parts)} instalments: " + "; ".join(
        f"{_money(p.amount_minor, currency)} {currency} on {p.due_date.isoformat()}" for p in parts
    )


def _credit(
    session: Session, doc: EInvoice, source: Source, entry: FileReport, folder: Path, actor: str
) -> None:
    """A credit note: a `credit_note` payment allocated to the credited invoice (BT-25)."""
    reference = "preceding invoice (BT-25)"
    if not doc.preceding_invoice:
        raise _Rejected(Problem(reference, "a credit note must name the invoice it credits"))
    # An invoice payable in instalments is credited on its instalments, the last ones first:
    # what the credit note takes off is the money owed latest, never an instalment already due.
    credited = _stored_parts(session, doc.preceding_invoice)
    if not credited:
        raise _Rejected(
            Problem(reference, f"credits invoice {doc.preceding_invoice}, which is not imported")
        )
    invoice = credited[0]
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
        invoice_ids=[each.id for each in credited],
        recorded_by=actor,
        thank=False,
        latest_first=True,
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
    vat = _vat(doc)[:32]
    debtor.vat_number = debtor.vat_number or vat or None


def _store(folder: Path, source: Source) -> Path:
    """The original file, by content hash (a re-import writes the same path), owner-only."""
    return _keep(_path(folder, source), source)


def _path(folder: Path, source: Source) -> Path:
    digest = hashlib.sha256(source.data).hexdigest()
    suffix = ".pdf" if kind(source.data) == "pdf" else ".xml"
    return folder / f"{digest}{suffix}"


def _keep(path: Path, source: Source) -> Path:
    private_dir(path.parent)
    if not path.exists():
        write_private(path, source.data)
    return path
