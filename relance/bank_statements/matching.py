"""What each credit pays: rules tried in order, with the database read in batches.

1. `rf`: an RF creditor reference of ours (structured, or anywhere in the remittance text) names
   the invoice(s).
2. `invoice_number`: an invoice number appears in the remittance text; the number of an invoice
   payable in instalments names its open instalments, which are paid earliest first.
3. `amount_payer`: the payer is known — by an IBAN that already paid one debtor's invoices, or by
   a name equal to exactly one debtor's name or company — and the amount equals one of its open
   invoices' balance, or its whole open balance in that currency.

A reference naming invoices of several debtors, a paid or unknown invoice, another currency than
the invoice's, or nothing conclusive sends the line to the review queue with the reason.

All lookups for a statement are done up front in chunks (`IN` lists of at most `CHUNK` values),
so matching 50,000 lines costs a few hundred queries, not several per line.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance.bank_statements import rf
from relance.bank_statements.models import BankStatementEntry
from relance.bank_statements.parsers import Line
from relance.db.models import Debtor, Invoice
from relance.db.models.enums import InvoiceStatus

CHUNK = 500
RF, INVOICE_NUMBER, AMOUNT_PAYER, COLLECTOR = "rf", "invoice_number", "amount_payer", "collector"
MATCHED, REVIEW, ASSIGNED, DISMISSED = "matched", "review", "assigned", "dismissed"
_TOKEN = re.compile(r"[^\s,;:/()\[\]'\"]+")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class InvoiceFacts:
    id: int
    debtor_id: int
    number: str
    currency: str
    status: str
    balance_minor: int


@dataclass(slots=True)
class Match:
    """Where a line goes: a debtor and the invoices to pay first, or review with a reason."""

    status: str
    rule: str | None = None
    debtor_id: int | None = None
    invoice_ids: list[int] = field(default_factory=list)
    reason: str | None = None


def _chunks(values: Sequence[T]) -> Iterable[Sequence[T]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _facts(rows: Iterable[Any]) -> dict[int, InvoiceFacts]:
    return {
        r.id: InvoiceFacts(r.id, r.debtor_id, r.number, r.currency, r.status, r.balance)
        for r in rows
    }


_FACT_COLUMNS = (
    Invoice.id,
    Invoice.debtor_id,
    Invoice.number,
    Invoice.currency,
    Invoice.status,
    (Invoice.amount_minor - Invoice.paid_minor).label("balance"),
)
_PAYABLE = (InvoiceStatus.OPEN, InvoiceStatus.DISPUTED)


def normalise_name(name: str | None) -> str:
    return " ".join((name or "").casefold().split())


def _tokens(line: Line) -> set[str]:
    text = f"{line.reference or ''} {line.remittance}"
    return {t.strip(".-") for t in _TOKEN.findall(text) if any(c.isdigit() for c in t)} - {""}


class Matcher:
    """Loads what a batch of lines can refer to, then decides line by line in memory."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def match_all(self, lines: Sequence[Line]) -> list[Match]:
        # By position, not by `line_no`: the transfers of one batch entry share its number.
        rf_ids = [rf.find_in_text(f"{line.reference or ''} {line.remittance}") for line in lines]
        tokens = [_tokens(line) for line in lines]
        by_id = self._invoices_by_id(sorted({i for ids in rf_ids for i in ids}))
        by_number = self._invoices_by_number(sorted({t for ts in tokens for t in ts}))
        payers = self._payers(lines)
        return [
            self._decide(line, line_rf, line_tokens, by_id, by_number, payers)
            for line, line_rf, line_tokens in zip(lines, rf_ids, tokens, strict=True)
        ]

    # --- batched lookups ---------------------------------------------------------------------

    def _invoices_by_id(self, ids: list[int]) -> dict[int, InvoiceFacts]:
        found: dict[int, InvoiceFacts] = {}
        for chunk in _chunks(ids):
            found.update(
                _facts(self.session.execute(select(*_FACT_COLUMNS).where(Invoice.id.in_(chunk))))
            )
        return found

    def _invoices_by_number(self, tokens: list[str]) -> dict[str, list[InvoiceFacts]]:
        """Invoices by the number a payer writes: its own, or the number of the invoice whose
        instalment it is (all of them, earliest due first: the allocation pays them in order)."""
        found: dict[str, list[InvoiceFacts]] = {}
        for chunk in _chunks(tokens):
            rows = self.session.execute(select(*_FACT_COLUMNS).where(Invoice.number.in_(chunk)))
            found.update({f.number: [f] for f in _facts(rows).values()})
            parts = self.session.execute(
                select(*_FACT_COLUMNS, Invoice.instalment_of)
                .where(Invoice.instalment_of.in_(chunk))
                .order_by(Invoice.instalment_of, Invoice.due_date, Invoice.id)
            )
            for row in parts:
                found.setdefault(row.instalment_of, []).append(_facts([row])[row.id])
        return found

    def _payers(self, lines: Sequence[Line]) -> _Payers:
        ibans = sorted({line.payer_iban for line in lines if line.payer_iban})
        names = sorted({normalise_name(line.payer_name) for line in lines if line.payer_name})
        by_iban: dict[str, set[int]] = defaultdict(set)
        for chunk in _chunks(ibans):
            rows = self.session.execute(
                select(BankStatementEntry.payer_iban, BankStatementEntry.debtor_id)
                .where(
                    BankStatementEntry.payer_iban.in_(chunk),
                    BankStatementEntry.debtor_id.is_not(None),
                    BankStatementEntry.status.in_((MATCHED, ASSIGNED)),
                )
                .distinct()
            )
            for iban, debtor_id in rows:
                if iban is not None and debtor_id is not None:
                    by_iban[iban].add(debtor_id)
        by_name: dict[str, set[int]] = defaultdict(set)
        for chunk in _chunks(names):
            for column in (Debtor.name, Debtor.company):
                named = self.session.execute(
                    select(func.lower(column), Debtor.id).where(func.lower(column).in_(chunk))
                )
                for name, debtor_id in named:
                    by_name[normalise_name(name)].add(debtor_id)
        debtor_ids = sorted({d for ids in (*by_iban.values(), *by_name.values()) for d in ids})
        open_invoices: dict[int, list[InvoiceFacts]] = defaultdict(list)
        for ids_chunk in _chunks(debtor_ids):
            found = self.session.execute(
                select(*_FACT_COLUMNS)
                .where(
                    Invoice.debtor_id.in_(ids_chunk),
                    Invoice.status.in_(_PAYABLE),
                    Invoice.amount_minor > Invoice.paid_minor,
                )
                .order_by(Invoice.due_date, Invoice.id)
            )
            for facts in _facts(found).values():
                open_invoices[facts.debtor_id].append(facts)
        return _Payers(by_iban, by_name, open_invoices)

    # --- the rules ---------------------------------------------------------------------------

    def _decide(
        self,
        line: Line,
        rf_ids: list[int],
        tokens: set[str],
        by_id: dict[int, InvoiceFacts],
        by_number: dict[str, list[InvoiceFacts]],
        payers: _Payers,
    ) -> Match:
        if rf_ids:
            unknown = [i for i in rf_ids if i not in by_id]
            if unknown:
                return Match(REVIEW, reason=f"RF reference of unknown invoice #{unknown[0]}")
            return _by_invoices(line, [by_id[i] for i in rf_ids], RF)
        named = [f for t in sorted(tokens) if t in by_number for f in by_number[t]]
        if named:
            return _by_invoices(line, named, INVOICE_NUMBER)
        return payers.decide(line)


def _by_invoices(line: Line, invoices: list[InvoiceFacts], rule: str) -> Match:
    debtors = {i.debtor_id for i in invoices}
    if len(debtors) > 1:
        numbers = ", ".join(i.number for i in invoices)
        return Match(REVIEW, reason=f"names invoices of several debtors ({numbers})"[:300])
    debtor_id = debtors.pop()
    wrong = [i for i in invoices if i.currency != line.currency]
    if wrong:
        return Match(
            REVIEW,
            debtor_id=debtor_id,
            reason=f"paid in {line.currency}, invoice {wrong[0].number} is in {wrong[0].currency}",
        )
    payable = [i for i in invoices if i.status in _PAYABLE and i.balance_minor > 0]
    if not payable:
        return Match(
            REVIEW,
            debtor_id=debtor_id,
            reason=f"invoice {invoices[0].number} is already {invoices[0].status}; paid twice?"[
                :300
            ],
        )
    return Match(MATCHED, rule=rule, debtor_id=debtor_id, invoice_ids=[i.id for i in payable])


@dataclass
class _Payers:
    by_iban: dict[str, set[int]]
    by_name: dict[str, set[int]]
    open_invoices: dict[int, list[InvoiceFacts]]

    def decide(self, line: Line) -> Match:
        candidates = self.by_iban.get(line.payer_iban or "", set())
        if not candidates:
            candidates = self.by_name.get(normalise_name(line.payer_name), set())
        if len(candidates) > 1:
            return Match(REVIEW, reason="the payer matches several debtors")
        if not candidates:
            return Match(REVIEW, reason="no reference, invoice number or known payer")
        debtor_id = next(iter(candidates))
        invoices = [i for i in self.open_invoices.get(debtor_id, []) if i.currency == line.currency]
        exact = [i for i in invoices if i.balance_minor == line.amount_minor]
        if len(exact) >= 1:
            return Match(MATCHED, rule=AMOUNT_PAYER, debtor_id=debtor_id, invoice_ids=[exact[0].id])
        if invoices and sum(i.balance_minor for i in invoices) == line.amount_minor:
            return Match(
                MATCHED,
                rule=AMOUNT_PAYER,
                debtor_id=debtor_id,
                invoice_ids=[i.id for i in invoices],
            )
        return Match(
            REVIEW,
            debtor_id=debtor_id,
            reason="known payer, but the amount matches no open invoice nor the open balance",
        )
