"""What a formal notice claims: principal, late-payment interest and the fixed indemnity.

Code de commerce L441-10 (B2B): interest runs from the day after the due date, without any
reminder, at the ECB refinancing rate + 10 points unless the contract says otherwise, plus a
fixed recovery indemnity of 40 euros per invoice (D441-5): the late instalments of an invoice
payable in parts (one row each, `Invoice.instalment_of`) owe it once. The indemnity is an amount
in euros, claimed on invoices in euros only (`fixed_indemnity_minor`). Consumers owe neither by
default.

Every consumer of the indemnity asks here: the letter, the portal, the assistant's answer about
fees (`compute_claim`), and the wording that mentions it (`indemnity_applies`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from relance.db.models import Invoice
from relance.db.models.enums import Segment
from relance.policy.schema import LetterRules

# The currency the D441-5 indemnity is stated in: "une indemnité forfaitaire pour frais de
# recouvrement, dont le montant est fixé à 40 euros".
INDEMNITY_CURRENCY = "EUR"


def indemnity_applies(currency: str) -> bool:
    """Whether a late B2B invoice in `currency` owes the fixed recovery indemnity here.

    Code de commerce L441-10 II and D441-5 fix the indemnity at 40 euros: a sum in euros, not 40
    units of whatever currency the invoice is in (40 dollars or 40 pounds is not what the law
    gives). An invoice in euros owes it. For an invoice in another currency Relance has no
    exchange rate it may rely on (which rate, of which day, from whom?), so it claims no
    indemnity at all rather than a converted guess or a "40" of the wrong currency; the
    late-payment interest (L441-10) still runs on it, in its own currency. The creditor may
    still claim the 40 euros by hand (a collector, a lawyer): Relance just never states it."""
    return currency.upper() == INDEMNITY_CURRENCY


def fixed_indemnity_minor(currency: str, rules: LetterRules) -> int:
    """The fixed indemnity owed by one late B2B invoice in `currency`, in euro cents: the
    policy's `letters.fixed_indemnity_minor` (4000, D441-5) for an invoice in euros, 0 for any
    other currency (`indemnity_applies`). Never an amount in the invoice's own currency."""
    return rules.fixed_indemnity_minor if indemnity_applies(currency) else 0


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
    # What one late invoice owes as fixed indemnity in this claim, in euro cents (0: none is
    # claimed: a consumer, or invoices not in euros, `fixed_indemnity_minor`).
    indemnity_unit_minor: int = 0

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
        # In euros only (D441-5 gives 40 euros, not 40 of the invoice's currency).
        unit = fixed_indemnity_minor(invoice.currency, rules)
        indemnity = b2b and unit > 0 and days > 0 and document not in indemnified
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
                indemnity_minor=unit if indemnity else 0,
            )
        )
    currency = invoices[0].currency if invoices else "EUR"
    return Claim(
        lines=lines,
        currency=currency,
        rate_pct=rate,
        b2b=b2b,
        indemnity_unit_minor=fixed_indemnity_minor(currency, rules) if b2b else 0,
    )
