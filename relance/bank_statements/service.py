"""Import a bank statement file all-or-nothing, and resolve the lines nobody could match.

`import_statement` parses the whole file first (`parsers`), then checks it: a known account, every
credit in the account's currency, no statement or line imported before. Any problem refuses the
file with every line's error and stores nothing. Then each credit is matched (`matching`) and a
matched credit is recorded through `relance.ledger.service.record_payment` — the very path a
Stripe payment takes: invoices settled, dunning stopped, promises kept, the debtor thanked,
everything audited. Lines that do not match wait in the review queue, where a collector assigns
them to a debtor (recorded the same way) or dismisses them with a note.

The caller commits (CLI, API request, console request): an exception anywhere rolls back the
statement, its lines and every payment it recorded together.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from schwifty import IBAN
from schwifty.exceptions import SchwiftyException
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from relance import audit
from relance.bank_statements import matching
from relance.bank_statements.matching import ASSIGNED, COLLECTOR, DISMISSED, MATCHED, REVIEW
from relance.bank_statements.models import BankStatement, BankStatementEntry
from relance.bank_statements.parsers import Line, Statement, StatementError, detect_and_parse
from relance.db.base import utcnow
from relance.db.models import Debtor, Invoice
from relance.errors import BadInput, Conflict, InvalidContent, NotFound
from relance.ledger.bulk import NewPayment, record_many
from relance.ledger.service import record_payment
from relance.settings import get_settings

PROVIDER = "bank"
MAX_NOTE_LENGTH = 2000
MAX_REPORTED_ERRORS = 100
SLICE = 2000  # credits matched, recorded and stored together


@dataclass
class StatementReport:
    statement_ids: list[int] = field(default_factory=list)
    lines: int = 0  # every booked line, debits included
    credits: int = 0
    matched: int = 0
    review: int = 0
    already_imported: int = 0  # lines an earlier statement brought in: skipped, never re-applied
    by_rule: dict[str, int] = field(default_factory=dict)
    payment_ids: list[int] = field(default_factory=list)
    paid_invoice_ids: list[int] = field(default_factory=list)


def _refuse(errors: list[tuple[int, str]], *, filename: str | None) -> InvalidContent:
    shown = errors[:MAX_REPORTED_ERRORS]
    where = f"{filename}: " if filename else ""
    first = shown[0]
    summary = f"line {first[0]}: {first[1]}" if first[0] else first[1]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return InvalidContent(
        "invalid_statement",
        f"{where}{summary}{more}; nothing was imported",
        errors=[{"line": line, "error": why} for line, why in shown],
    )


def _compact_iban(text: str) -> str:
    return text.replace(" ", "").upper()


def _check_statement(statement: Statement, accounts: list[str]) -> list[tuple[int, str]]:
    errors: list[tuple[int, str]] = []
    iban = _compact_iban(statement.account_iban)
    try:
        IBAN(iban)
    except SchwiftyException as exc:
        errors.append((0, f"account {iban[:34]!r} is not a valid IBAN ({exc})"))
        return errors
    if iban not in accounts:
        errors.append(
            (0, f"unknown account {iban}: not one of the creditor's accounts (CREDITOR_IBANS)")
        )
    statement.account_iban = iban
    if not re.fullmatch(r"[A-Z]{3}", statement.currency):
        errors.append((0, f"the account currency {statement.currency[:8]!r} is not an ISO code"))
    for line in statement.lines:
        if line.currency != statement.currency:
            errors.append(
                (
                    line.line_no,
                    f"{line.currency} amount on a {statement.currency} account "
                    f"(statement {statement.statement_ref})",
                )
            )
        if line.payer_iban:
            line.payer_iban = _compact_iban(line.payer_iban)[:34]
    return errors


def _keys(statement: Statement) -> list[tuple[Line, str]]:
    seen: Counter[str] = Counter()
    keyed = []
    for line in statement.lines:
        if not line.credit or line.reversal:
            continue
        base = line.key(0)
        seen[base] += 1
        keyed.append((line, base if seen[base] == 1 else line.key(seen[base] - 1)))
    return keyed


def import_statement(
    session: Session,
    data: bytes,
    *,
    actor: str,
    filename: str | None = None,
) -> StatementReport:
    """Parse, check, match and record one statement file; refuse it whole on any problem."""
    settings = get_settings()
    if not data.strip():
        raise BadInput("empty_statement", "The statement file is empty")
    if len(data) > settings.bank_statement_max_bytes:
        raise BadInput(
            "statement_too_large",
            f"The statement is larger than {settings.bank_statement_max_bytes} bytes",
        )
    try:
        statements = detect_and_parse(data, max_lines=settings.bank_statement_max_lines)
    except StatementError as exc:
        raise _refuse([(exc.line, str(exc))], filename=filename) from None
    errors: list[tuple[int, str]] = []
    accounts = settings.creditor_iban_list
    seen: set[tuple[str, str]] = set()
    for statement in statements:
        errors.extend(_check_statement(statement, accounts))
        # Else the second one's row breaks the (account, statement_ref) unique key, which
        # reads as a concurrent import.
        known = (statement.account_iban, statement.statement_ref)
        if known in seen:
            errors.append(
                (
                    0,
                    f"statement {statement.statement_ref} of account {statement.account_iban} "
                    "appears twice in the file (statements are told apart by their id, MT940 "
                    ":20:/:28C:)",
                )
            )
        seen.add(known)
    if errors:
        raise _refuse(errors, filename=filename)
    digest = hashlib.sha256(data).hexdigest()
    _refuse_duplicate(session, statements, digest)

    try:
        return _import(session, statements, digest, actor=actor, filename=filename)
    except IntegrityError:
        # Another import of the same statement or lines committed between our checks and our
        # writes: the unique keys refused the second one. The caller rolls back.
        raise Conflict(
            "duplicate_statement",
            "this statement was being imported at the same time; nothing was re-applied",
        ) from None


def _import(
    session: Session,
    statements: list[Statement],
    digest: str,
    *,
    actor: str,
    filename: str | None,
) -> StatementReport:
    report = StatementReport()
    for number, statement in enumerate(statements):
        keyed = _keys(statement)
        known = _known_keys(session, statement.account_iban, [k for _, k in keyed])
        if keyed and len(known) == len(keyed):
            raise Conflict(
                "duplicate_statement",
                f"every credit of statement {statement.statement_ref} was imported before "
                "(same bank references); nothing was re-applied",
            )
        fresh = [(line, key) for line, key in keyed if key not in known]
        report.already_imported += len(keyed) - len(fresh)
        report.lines += len(statement.lines)
        report.credits += len(keyed)
        row = BankStatement(
            format=statement.format,
            account_iban=statement.account_iban,
            statement_ref=statement.statement_ref,
            sha256=digest if number == 0 else f"{digest[:60]}{number:04d}",
            filename=(filename or "")[:255] or None,
            currency=statement.currency,
            entry_count=len(statement.lines),
            credit_count=len(keyed),
            matched_count=0,
            review_count=0,
            imported_by=actor[:128],
        )
        session.add(row)
        session.flush()
        # In slices, so memory stays bounded and a later slice sees what an earlier one paid
        # (a second transfer for an invoice just settled goes to review, not to credit).
        for start in range(0, len(fresh), SLICE):
            _apply(session, row, fresh[start : start + SLICE], actor=actor, report=report)
        report.statement_ids.append(row.id)
        audit.record(
            session,
            actor=actor,
            action="bank_statement.imported",
            entity=row,
            format=row.format,
            account_iban=row.account_iban,
            statement_ref=row.statement_ref,
            filename=row.filename,
            lines=row.entry_count,
            credits=row.credit_count,
            matched=row.matched_count,
            review=row.review_count,
            already_imported=len(keyed) - len(fresh),
        )
    return report


def _refuse_duplicate(session: Session, statements: list[Statement], digest: str) -> None:
    same_file = session.scalars(select(BankStatement).where(BankStatement.sha256 == digest)).first()
    if same_file is not None:
        raise Conflict(
            "duplicate_statement",
            f"this file was imported on {same_file.created_at:%Y-%m-%d} (statement "
            f"{same_file.statement_ref}, import #{same_file.id}); nothing was re-applied",
        )
    for statement in statements:
        known = session.scalars(
            select(BankStatement).where(
                BankStatement.account_iban == statement.account_iban,
                BankStatement.statement_ref == statement.statement_ref,
            )
        ).first()
        if known is not None:
            raise Conflict(
                "duplicate_statement",
                f"statement {statement.statement_ref} of account {statement.account_iban} was "
                f"imported on {known.created_at:%Y-%m-%d} (import #{known.id}); nothing was "
                "re-applied",
            )


def _known_keys(session: Session, iban: str, keys: list[str]) -> set[str]:
    known: set[str] = set()
    for start in range(0, len(keys), matching.CHUNK):
        chunk = keys[start : start + matching.CHUNK]
        known.update(
            session.scalars(
                select(BankStatementEntry.entry_key).where(
                    BankStatementEntry.account_iban == iban,
                    BankStatementEntry.entry_key.in_(chunk),
                )
            )
        )
    return known


def _received_at(line: Line) -> datetime:
    return datetime.combine(line.booking_date, datetime.min.time(), UTC)


def provider_ref(iban: str, key: str) -> str:
    return f"{PROVIDER}:{iban}:{key}"[:128]


def _apply(
    session: Session,
    statement: BankStatement,
    lines: list[tuple[Line, str]],
    *,
    actor: str,
    report: StatementReport,
) -> None:
    matches = matching.Matcher(session).match_all([line for line, _ in lines])
    # Matched credits are recorded in batches (relance/ledger/bulk.py): the same effects as
    # record_payment, a handful of statements per batch instead of some twenty per line.
    to_record = [
        NewPayment(
            debtor_id=match.debtor_id,
            amount_minor=line.amount_minor,
            currency=line.currency,
            provider_ref=provider_ref(statement.account_iban, key),
            received_at=_received_at(line),
            invoice_ids=tuple(match.invoice_ids),
        )
        for (line, key), match in zip(lines, matches, strict=True)
        if match.status == MATCHED and match.debtor_id is not None
    ]
    recorded = iter(
        record_many(session, to_record, method="transfer", provider=PROVIDER, recorded_by=actor)
    )
    rows = []
    for (line, key), match in zip(lines, matches, strict=True):
        payment_id = None
        if match.status == MATCHED and match.debtor_id is not None:
            done = next(recorded)
            payment_id = done.payment_id
            report.payment_ids.append(payment_id)
            report.paid_invoice_ids.extend(done.paid_invoice_ids)
            report.matched += 1
            report.by_rule[match.rule or ""] = report.by_rule.get(match.rule or "", 0) + 1
        else:
            report.review += 1
        rows.append(
            {
                "statement_id": statement.id,
                "account_iban": statement.account_iban,
                "entry_key": key,
                "line_no": line.line_no,
                "booking_date": line.booking_date,
                "amount_minor": line.amount_minor,
                "currency": line.currency,
                "bank_ref": (line.bank_ref or "")[:128] or None,
                "payer_name": line.payer_name,
                "payer_iban": line.payer_iban,
                "remittance": line.remittance or line.reference or None,
                "status": match.status,
                "rule": match.rule,
                "reason": match.reason,
                "debtor_id": match.debtor_id,
                "invoice_ids": ",".join(str(i) for i in match.invoice_ids) or None,
                "payment_id": payment_id,
            }
        )
    session.execute(insert(BankStatementEntry), rows)
    matched = sum(1 for m in matches if m.status == MATCHED)
    statement.matched_count += matched
    statement.review_count += len(matches) - matched
    session.flush()


# --- the review queue ---------------------------------------------------------------------------


def list_review(
    session: Session, *, status: str = REVIEW, offset: int = 0, limit: int = 50
) -> list[BankStatementEntry]:
    """Oldest first while waiting; latest decision first once resolved."""
    query = select(BankStatementEntry)
    if status == REVIEW:
        query = query.where(BankStatementEntry.status == REVIEW).order_by(BankStatementEntry.id)
    else:
        query = query.where(BankStatementEntry.status.in_((ASSIGNED, DISMISSED))).order_by(
            BankStatementEntry.resolved_at.desc(), BankStatementEntry.id.desc()
        )
    return list(session.scalars(query.offset(offset).limit(limit)))


def count_review(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(BankStatementEntry.status, func.count())
        .where(BankStatementEntry.status.in_((REVIEW, ASSIGNED, DISMISSED)))
        .group_by(BankStatementEntry.status)
    )
    return {status: int(count) for status, count in rows}


def _open_entry(session: Session, entry_id: int) -> BankStatementEntry:
    entry = session.execute(
        select(BankStatementEntry).where(BankStatementEntry.id == entry_id).with_for_update()
    ).scalar_one_or_none()
    if entry is None:
        raise NotFound("no_such_bank_line", f"no bank statement line #{entry_id}")
    if entry.status != REVIEW:
        raise Conflict("already_reviewed", f"bank line #{entry_id} was already {entry.status}")
    return entry


def assign(
    session: Session,
    entry_id: int,
    *,
    actor: str,
    customer_number: str | None = None,
    invoice_number: str | None = None,
    note: str = "",
) -> BankStatementEntry:
    """Record the line as the named debtor's payment (the named invoice paid first)."""
    entry = _open_entry(session, entry_id)
    note = note.strip()
    if len(note) > MAX_NOTE_LENGTH:
        raise InvalidContent(
            "note_too_long", f"the note is longer than {MAX_NOTE_LENGTH} characters"
        )
    invoice = None
    if invoice_number and invoice_number.strip():
        invoice = session.scalars(
            select(Invoice).where(Invoice.number == invoice_number.strip())
        ).first()
        if invoice is None:
            raise InvalidContent("unknown_invoice", f"no invoice {invoice_number.strip()[:64]}")
    debtor = None
    if customer_number and customer_number.strip():
        debtor = session.scalars(
            select(Debtor).where(Debtor.customer_number == customer_number.strip())
        ).first()
        if debtor is None:
            raise InvalidContent("unknown_debtor", f"no debtor {customer_number.strip()[:64]}")
    if debtor is None and invoice is not None:
        debtor = session.get(Debtor, invoice.debtor_id)
    if debtor is None:
        raise InvalidContent(
            "debtor_required", "name the debtor (customer number) or the invoice it pays"
        )
    if invoice is not None and invoice.debtor_id != debtor.id:
        raise InvalidContent(
            "invoice_of_another_debtor",
            f"invoice {invoice.number} is not customer {debtor.customer_number}'s",
        )
    if invoice is not None and invoice.currency != entry.currency:
        raise InvalidContent(
            "currency_mismatch",
            f"a {entry.currency} payment cannot pay invoice {invoice.number} in {invoice.currency}",
        )
    outcome = record_payment(
        session,
        debtor_id=debtor.id,
        amount_minor=entry.amount_minor,
        currency=entry.currency,
        method="transfer",
        provider=PROVIDER,
        provider_ref=provider_ref(entry.account_iban, entry.entry_key),
        invoice_ids=[invoice.id] if invoice is not None else None,
        received_at=datetime.combine(entry.booking_date, datetime.min.time(), UTC),
        recorded_by=actor,
    )
    entry.status, entry.rule = ASSIGNED, COLLECTOR
    entry.debtor_id, entry.payment_id = debtor.id, outcome.payment.id
    entry.invoice_ids = str(invoice.id) if invoice is not None else None
    _resolved(entry, actor, note)
    audit.record(
        session,
        actor=actor,
        action="bank_line.assigned",
        entity=entry,
        debtor_id=debtor.id,
        payment_id=outcome.payment.id,
        invoice_id=invoice.id if invoice is not None else None,
        amount_minor=entry.amount_minor,
        currency=entry.currency,
        note=entry.note,
    )
    return entry


def dismiss(session: Session, entry_id: int, *, actor: str, note: str) -> BankStatementEntry:
    """Not a debtor's payment (a refund, a transfer between own accounts…): say so, record nothing."""
    entry = _open_entry(session, entry_id)
    note = note.strip()
    if not note:
        raise InvalidContent("note_required", "say what this money is (refund, internal transfer…)")
    if len(note) > MAX_NOTE_LENGTH:
        raise InvalidContent(
            "note_too_long", f"the note is longer than {MAX_NOTE_LENGTH} characters"
        )
    entry.status = DISMISSED
    _resolved(entry, actor, note)
    audit.record(
        session,
        actor=actor,
        action="bank_line.dismissed",
        entity=entry,
        amount_minor=entry.amount_minor,
        currency=entry.currency,
        note=entry.note,
    )
    return entry


def _resolved(entry: BankStatementEntry, actor: str, note: str) -> None:
    entry.resolved_by = actor[:128]
    entry.resolved_at = utcnow()
    entry.note = note or None
