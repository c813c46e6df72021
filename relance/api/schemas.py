"""Request and response shapes of the JSON API (pydantic v2).

Inputs are strict: integers must be JSON integers, phones E.164, currencies ISO 4217, every string
bounded by its column width and free of control characters (PostgreSQL refuses NUL bytes, and a
500 from the driver is worse than a clear 422). Outputs are stable: money is always
`{amount_minor, currency}`, lists are always a `Page` envelope.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import cache
from typing import Annotated, Any, Generic, Literal, TypeAlias, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from babel.numbers import list_currencies
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from relance.db.models.enums import Segment
from relance.languages import Language
from relance.portfolio.rows import MAX_MINOR as MAX_IMPORT_MINOR
from relance.web.ids import MAX_ID as MAX_ID  # re-exported for the api modules

# Amounts: the importer's own bound (money columns are 64-bit). Ids: relance.web.ids.
MAX_MINOR = MAX_IMPORT_MINOR - 1  # inclusive bound
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def no_control_chars(value: str) -> str:
    """Tabs and newlines are text; NUL and the other C0 controls are not."""
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def _e164(value: str) -> str:
    if not value.startswith("+"):
        raise ValueError("must be an E.164 phone number such as +33612345678")
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("must be an E.164 phone number such as +33612345678") from exc
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # "possible" (length and country code), like the CSV importer: numbering plans change faster
    # than the phonenumbers metadata, and Twilio reports unreachable numbers anyway.
    if formatted != value or not phonenumbers.is_possible_number(number):
        raise ValueError("must be a possible E.164 phone number such as +33612345678")
    return value


@cache
def iso_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def _currency(value: str) -> str:
    if value not in iso_currencies():
        raise ValueError("must be an ISO 4217 currency code such as EUR")
    return value


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("must be an IANA time zone such as Europe/Paris") from exc
    return value


def bounded(max_length: int, min_length: int = 0) -> StringConstraints:
    """The length bounds of a text field (surrounding blanks are not text)."""
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)


NO_CONTROL_CHARS = AfterValidator(no_control_chars)

# Bounded, control-character-free strings. Spelt out as `Annotated` aliases (not built by a
# function) so that type checkers see them as `str`.
Key64: TypeAlias = Annotated[str, bounded(64, 1), NO_CONTROL_CHARS]
Name200: TypeAlias = Annotated[str, bounded(200, 1), NO_CONTROL_CHARS]
Text16: TypeAlias = Annotated[str, bounded(16), NO_CONTROL_CHARS]
Text120: TypeAlias = Annotated[str, bounded(120), NO_CONTROL_CHARS]
Text200: TypeAlias = Annotated[str, bounded(200), NO_CONTROL_CHARS]
Text300: TypeAlias = Annotated[str, bounded(300), NO_CONTROL_CHARS]
Note2000: TypeAlias = Annotated[str, bounded(2000, 1), NO_CONTROL_CHARS]


E164 = Annotated[
    str,
    StringConstraints(min_length=8, max_length=16, pattern=r"^\+[1-9][0-9]{6,14}$"),
    AfterValidator(_e164),
]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), AfterValidator(_currency)]
MinorUnits = Annotated[int, Field(strict=True, ge=0, le=MAX_MINOR)]
TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_timezone)]
Email = Annotated[
    str,
    StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    AfterValidator(no_control_chars),
]


# ---------------------------------------------------------------- common outputs


class Money(BaseModel):
    amount_minor: int
    currency: str


def money(amount_minor: int, currency: str) -> Money:
    return Money(amount_minor=amount_minor, currency=currency)


class ErrorOut(BaseModel):
    """An RFC 9457 problem document (`application/problem+json`), see relance/web/errors.py;
    `error` and `message` repeat `code` and `detail` for clients of the earlier format."""

    type: str = Field(description="urn:relance:error:<code>")
    title: str
    status: int
    detail: str
    code: str
    error: str
    message: str


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list. Order is by id, so offsets are stable while rows are only appended."""

    items: list[T]
    total: int
    limit: int
    offset: int
    next_offset: int | None


# ---------------------------------------------------------------- debtors


DebtorStatus = Literal["disputed", "in_plan", "promised", "owing", "settled"]


class ContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from the ORM row as is

    id: int
    channel: str
    address: str
    consent: bool
    opted_out_at: datetime | None
    status: str
    reachable: bool


class DebtorSummary(BaseModel):
    id: int
    customer_number: str
    name: str
    company: str | None
    segment: str
    language: str
    timezone: str
    country: str
    status: DebtorStatus
    balances: list[Money]
    created_at: datetime


class InvoiceOut(BaseModel):
    id: int
    debtor_id: int
    number: str
    description: str | None
    amount: Money
    paid: Money
    balance: Money
    issue_date: date
    due_date: date
    status: str
    dunning_paused_until: date | None
    paid_at: datetime | None
    created_at: datetime


class DisputeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from the ORM row as is

    id: int
    reference: str
    debtor_id: int
    invoice_id: int | None
    reason: str
    details: str | None
    status: str
    resolution_note: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    created_at: datetime


class InstallmentOut(BaseModel):
    id: int
    seq: int
    due_date: date
    amount: Money
    paid: Money
    status: str


class PaymentPlanOut(BaseModel):
    id: int
    debtor_id: int
    total: Money
    installments_count: int
    frequency: str
    status: str
    invoice_ids: list[int]
    approved_by: str | None
    note: str | None
    installments: list[InstallmentOut]
    created_at: datetime


class PromiseOut(BaseModel):
    id: int
    debtor_id: int
    amount: Money
    promised_date: date
    status: str
    invoice_ids: list[int]
    source: str
    created_at: datetime


class LetterOut(BaseModel):
    id: int
    debtor_id: int
    kind: str
    language: str
    status: str
    invoice_ids: list[int]
    principal: Money
    interest: Money
    indemnity: Money
    total: Money
    deadline: date
    has_pdf: bool
    tracking_number: str | None
    sent_at: datetime | None
    created_at: datetime


class LatePaymentReasonOut(BaseModel):
    """Why the debtor says they pay late: a category from a closed list and their own words."""

    model_config = ConfigDict(from_attributes=True)  # built from the ORM row as is

    id: int
    debtor_id: int
    category: str = Field(
        description="insolvency, job_loss, illness, not_received, oversight, "
        "dispute, cash_flow, hardship or other"
    )
    words: str | None = Field(description="The debtor's message the category was read from")
    channel: str | None
    language: str | None
    conversation_id: int | None
    message_id: int | None
    identity_verified: bool = Field(description="Whether the sender had passed the identity check")
    source: str
    created_at: datetime


class ConversationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from the ORM row as is

    id: int
    debtor_id: int | None
    mode: str
    language: str
    last_channel: str | None
    last_inbound_at: datetime | None
    last_message_at: datetime | None
    created_at: datetime


class Debtor360(DebtorSummary):
    """Everything a collector needs on one screen."""

    risk_class: str
    jurisdiction: str
    email: str | None
    address_line: str | None
    postcode: str | None
    city: str | None
    contacts: list[ContactOut]
    invoices: list[InvoiceOut]
    promises: list[PromiseOut]
    disputes: list[DisputeOut]
    payment_plans: list[PaymentPlanOut]
    letters: list[LetterOut]
    conversation: ConversationOut | None
    late_payment_reason: LatePaymentReasonOut | None = Field(
        description="The latest reason the debtor gave for paying late"
    )
    late_payment_reasons: list[LatePaymentReasonOut] = Field(
        description="Every reason the debtor gave, newest first"
    )


# ---------------------------------------------------------------- conversations, handoffs, policies


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from the ORM row as is

    id: int
    conversation_id: int
    direction: str
    channel: str
    author: str
    body: str
    address: str | None
    status: str
    error_code: str | None
    created_at: datetime


class HandoffOut(BaseModel):
    id: int
    conversation_id: int
    debtor_id: int | None
    reason: str
    details: str | None
    priority: int
    status: str
    assigned_to_id: int | None
    closed_at: datetime | None
    created_at: datetime


class PolicyOut(BaseModel):
    """`source` is `seed` (version 0) until an admin saves a policy in the console."""

    id: int | None
    version: int
    source: Literal["stored", "seed"]
    document: dict[str, Any]
    comment: str | None
    created_by: str | None
    created_at: datetime | None


# ---------------------------------------------------------------- inputs


class StrictInput(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ImportRow(StrictInput):
    """One debtor + invoice line, the JSON twin of a CSV row (amounts in minor units here)."""

    customer_number: Key64
    name: Name200
    phone: E164
    invoice_number: Key64
    amount_minor: Annotated[int, Field(strict=True, ge=1, le=MAX_MINOR)]
    currency: Currency
    issue_date: date
    due_date: date
    paid_minor: MinorUnits = 0
    company: Text200 | None = None
    segment: Segment | None = None
    risk_class: Text16 | None = None
    language: Language | None = None
    timezone: TimeZone | None = None
    jurisdiction: Literal["FR", "US"] | None = None
    whatsapp: E164 | None = None
    email: Email | None = None
    address_line: Text300 | None = None
    postcode: Text16 | None = None
    city: Text120 | None = None
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = None
    description: Text300 | None = None


class ImportRequest(StrictInput):
    rows: Annotated[list[ImportRow], Field(min_length=1, max_length=5000)]


class RowProblems(BaseModel):
    row: int = Field(description="1-based position of the data row (CSV: header excluded)")
    line: int | None = Field(default=None, description="CSV line number (header is line 1)")
    problems: list[str]


class ImportRejected(ErrorOut):
    rows: list[RowProblems]


class ImportResult(BaseModel):
    rows: int
    debtors_created: int
    invoices_created: int
    invoices_unchanged: int
    warnings: list[str] = Field(default_factory=list)  # imported anyway; worth a look


class DisputeDecision(StrictInput):
    note: Note2000
