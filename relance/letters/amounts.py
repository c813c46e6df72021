"""What a formal notice claims: principal, late-payment interest and the fixed indemnity.

Code de commerce L441-10 (B2B): interest runs from the day after the due date, without any
reminder, at the ECB refinancing rate + 10 points unless the contract says otherwise, plus a
fixed EUR 40 recovery indemnity per invoice (D441-5): the late instalments of an invoice payable
in parts (one row each, `Invoice.instalment_of`) owe it once. Consumers owe neither by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from relance.db.models import Invoice
from relance.db.models.enums import Segment
from relance.policy.schema import LetterRules


@dataclass(frozen=True)
class ClaimLine:
    invoice_id: int
    number: str
    issue_date: date
    due_date: date
    principal_minor: int
    days_late: int
    interest_minor: int
    indemnity_minor: int

    @property
    def total_minor(self) -> int:
        return self.principal_minor + self.interest_minor + self.indemnity_minor


@dataclass(frozen=True)
class Claim:
    lines: list[ClaimLine]
    currency: str
    rate_pct: float
    b2b: bool

    @property
    def principal_minor(self) -> int:
        return sum(line.principal_minor for line in self.lines)

    @property
    def interest_minor(self) -> int:
        return sum(line.interest_minor for line in self.lines)

    @property
    def indemnity_minor(self) -> int:
        return sum(line.indemnity_minor for line in self.lines)

    @property
    def total_minor(self) -> int:
        return self.principal_minor + self.interest_minor + self.indemnity_minor


def interest_minor(principal_minor: int, rate_pct: float, days: int) -> int:
    """Simple interest on a 365-day year, rounded half up to the minor unit."""
    if days <= 0 or rate_pct <= 0 or principal_minor <= 0:
        return 0
    value = Decimal(principal_minor) * Decimal(str(rate_pct)) / 100 * days / 365
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def compute_claim(
    invoices: list[Invoice], *, segment: str, as_of: date, rules: LetterRules
) -> Claim:
    b2b = segment == Segment.B2B
    rate = rules.b2b_rate_pct if b2b else (rules.consumer_interest_rate_pct or 0.0)
    lines = []
    indemnified: set[str] = set()  # D441-5: one indemnity per invoice, not per instalment
    for invoice in sorted(invoices, key=lambda i: (i.due_date, i.number)):
        days = max((as_of - invoice.due_date).days, 0)
        principal = invoice.balance_minor
        document = invoice.instalment_of or invoice.number
        indemnity = b2b and days > 0 and document not in indemnified
        if indemnity:
            indemnified.add(document)
        lines.append(
            ClaimLine(
                invoice_id=invoice.id,
                number=invoice.number,
                issue_date=invoice.issue_date,
                due_date=invoice.due_date,
                principal_minor=principal,
                days_late=days,
                interest_minor=interest_minor(principal, rate, days),
                indemnity_minor=rules.fixed_indemnity_minor if indemnity else 0,
            )
        )
    currency = invoices[0].currency if invoices else "EUR"
    return Claim(lines=lines, currency=currency, rate_pct=rate, b2b=b2b)
