"""One CSV row → validated debtor + invoice data, or a list of human-readable problems."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from babel.numbers import get_currency_precision

from relance.contacts.email_address import normalise_email
from relance.errors import BadInput
from relance.languages import LANGUAGES

REQUIRED = (
    "customer_number",
    "name",
    "phone",
    "invoice_number",
    "amount",
    "currency",
    "issue_date",
    "due_date",
)
COLUMNS = (
    *REQUIRED,
    "company",
    "segment",
    "risk_class",
    "language",
    "timezone",
    "jurisdiction",
    "whatsapp",
    "email",
    "address_line",
    "postcode",
    "city",
    "country",
    "description",
    "paid_amount",
)


# Column widths of the models: refused here with a clear message rather than by the database.
MAX_LENGTHS = {
    "customer_number": 64,
    "name": 200,
    "company": 200,
    "phone": 32,
    "whatsapp": 32,
    "invoice_number": 64,
    "description": 300,
    "email": 254,
    "address_line": 300,
    "postcode": 16,
    "city": 120,
    "country": 2,
    "timezone": 64,
    "risk_class": 16,
}


@dataclass(frozen=True)
class DebtorData:
    customer_number: str
    name: str
    company: str | None
    segment: str
    risk_class: str
    language: str
    timezone: str
    jurisdiction: str
    phone: str
    whatsapp: str | None
    email: str | None
    address_line: str | None
    postcode: str | None
    city: str | None
    country: str


@dataclass(frozen=True)
class InvoiceData:
    number: str
    description: str | None
    amount_minor: int
    paid_minor: int
    currency: str
    issue_date: date
    due_date: date


@dataclass(frozen=True)
class ParsedRow:
    line: int
    debtor: DebtorData
    invoice: InvoiceData


def parse_row(
    line: int, raw: dict[str, str | None], date_shift_days: int = 0
) -> ParsedRow | list[str]:
    """Validate one row; return the parsed row or every problem found (not just the first)."""
    row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k}
    problems = [f"{col} is required" for col in REQUIRED if not row.get(col)]
    problems += [
        f"{col} is longer than {limit} characters"
        for col, limit in MAX_LENGTHS.items()
        if len(row.get(col) or "") > limit
    ]
    problems += [
        f"{col} contains control characters"
        for col, value in row.items()
        if value and any(ord(ch) < 32 for ch in value)
    ]
    if problems:
        return problems

    country = (row.get("country") or "FR").upper()
    phone = _phone(row["phone"], country, "phone", problems)
    whatsapp = (
        _phone(row["whatsapp"], country, "whatsapp", problems) if row.get("whatsapp") else None
    )
    currency = row["currency"].upper()
    if len(currency) != 3 or not currency.isalpha():
        problems.append(f"currency '{row['currency']}' is not an ISO 4217 code")
        currency = "EUR"
    amount_minor = _money(row["amount"], currency, "amount", problems)
    paid_minor = _money(row.get("paid_amount") or "0", currency, "paid_amount", problems)
    if amount_minor is not None and amount_minor <= 0:
        problems.append("amount must be positive")
    if amount_minor is not None and paid_minor is not None and paid_minor > amount_minor:
        problems.append("paid_amount is larger than amount")
    issue = _date(row["issue_date"], "issue_date", problems)
    due = _date(row["due_date"], "due_date", problems)
    if issue and due and due < issue:
        problems.append("due_date is before issue_date")
    language = (row.get("language") or "fr").lower()
    if language not in LANGUAGES:
        problems.append(f"language '{language}' must be {' or '.join(LANGUAGES)}")
    segment = (row.get("segment") or "consumer").lower()
    if segment not in ("b2b", "consumer"):
        problems.append(f"segment '{segment}' must be b2b or consumer")
    timezone = row.get("timezone") or "Europe/Paris"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"timezone '{timezone}' is unknown")
    jurisdiction = (row.get("jurisdiction") or ("US" if country == "US" else "FR")).upper()
    if jurisdiction not in ("FR", "US"):
        problems.append(f"jurisdiction '{jurisdiction}' must be FR or US")
    email = (row.get("email") or "").strip() or None
    if email is not None:
        try:  # one validation (a check, then the normal form, ran the validator twice)
            email = normalise_email(email)
        except BadInput as exc:
            problems.append(f"email: {exc.message}")
    if problems:
        return problems
    assert phone and issue and due and amount_minor is not None and paid_minor is not None
    shift = timedelta(days=date_shift_days)
    return ParsedRow(
        line=line,
        debtor=DebtorData(
            customer_number=row["customer_number"],
            name=row["name"],
            company=row.get("company") or None,
            segment=segment,
            risk_class=row.get("risk_class") or "standard",
            language=language,
            timezone=timezone,
            jurisdiction=jurisdiction,
            phone=phone,
            whatsapp=whatsapp,
            email=email,
            address_line=row.get("address_line") or None,
            postcode=row.get("postcode") or None,
            city=row.get("city") or None,
            country=country,
        ),
        invoice=InvoiceData(
            number=row["invoice_number"],
            description=row.get("description") or None,
            amount_minor=amount_minor,
            paid_minor=paid_minor,
            currency=currency,
            issue_date=issue + shift,
            due_date=due + shift,
        ),
    )


def _phone(raw: str, country: str, field: str, problems: list[str]) -> str | None:
    try:
        number = phonenumbers.parse(raw, country)
    except phonenumbers.NumberParseException:
        problems.append(f"{field} '{raw}' is not a phone number")
        return None
    if not phonenumbers.is_possible_number(number):
        problems.append(f"{field} '{raw}' is not a possible phone number")
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_phone(raw: str, country: str) -> str | None:
    """The phone in E.164 as `parse_row` stores it, or None when it is not a possible number."""
    return _phone(raw, country, "phone", [])


MAX_MINOR = 10**15  # minor units: far above any invoice, far below a 64-bit column


def _money(raw: str, currency: str, field: str, problems: list[str]) -> int | None:
    try:
        value = Decimal(raw.replace(" ", "").replace(",", "."))
    except InvalidOperation:
        problems.append(f"{field} '{raw}' is not a number")
        return None
    if not value.is_finite() or abs(value) >= MAX_MINOR:  # before scaling: no huge exponents
        problems.append(f"{field} '{raw}' is not a usable amount")
        return None
    if value < 0:
        problems.append(f"{field} must not be negative")
        return None
    precision = get_currency_precision(currency)
    minor = value * (Decimal(10) ** precision)
    if minor != minor.to_integral_value():
        problems.append(f"{field} '{raw}' has more than {precision} decimals")
        return None
    if minor >= MAX_MINOR:
        problems.append(f"{field} '{raw}' is not a usable amount")
        return None
    return int(minor)


# The amount rule, for documents that are not rows (credit notes of relance/einvoice).
to_minor = _money


def _date(raw: str, field: str, problems: list[str]) -> date | None:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        problems.append(f"{field} '{raw}' is not a date (YYYY-MM-DD)")
        return None
