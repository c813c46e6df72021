"""What the planner, dispatcher and timeline must know about debtors to decide on a contact.

Loaded for a whole range of debtors at once (a handful of range queries per chunk, never one query
per invoice), then consulted in memory by `skip_reason`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import QueryableAttribute, Session

from relance.db.models import (
    Contact,
    Conversation,
    Dispute,
    Handoff,
    PaymentPlan,
    Promise,
)
from relance.db.models.enums import (
    Channel,
    ContactStatus,
    ConversationMode,
    DisputeStatus,
    HandoffStatus,
    InvoiceStatus,
    PlanStatus,
    PromiseStatus,
)

# Order matters: the first reason that applies is the one recorded.
SKIP_REASONS = (
    "paid",
    "disputed",
    "paused",
    "promised",
    "on_plan",
    "handed_off",
    "opted_out",
    "no_contact",
    "no_postal_address",
)


@dataclass(frozen=True)
class ContactRow:
    id: int
    channel: str
    address: str
    consent: bool
    opted_out_at: datetime | None
    status: str

    @property
    def reachable(self) -> bool:
        return self.consent and self.opted_out_at is None and self.status == ContactStatus.OK


@dataclass
class DebtorContext:
    disputed_invoices: set[int] = field(default_factory=set)
    whole_account_disputed: bool = False
    promises: list[tuple[date, frozenset[int]]] = field(default_factory=list)  # empty set: all
    plans: list[frozenset[int]] = field(default_factory=list)
    handed_off: bool = False
    broken_promises: int = 0
    contacts: list[ContactRow] = field(default_factory=list)

    def contact_for(self, channel: str) -> ContactRow | None:
        """Voice uses a voice contact, else the SMS number (sharing its opt-out state)."""
        wanted = [channel] if channel != Channel.VOICE else [Channel.VOICE, Channel.SMS]
        for name in wanted:
            rows = [c for c in self.contacts if c.channel == name]
            reachable = [c for c in rows if c.reachable]
            if reachable or rows:
                return (reachable or rows)[0]
        return None


class InvoiceRow(NamedTuple):
    """An invoice as the planner sees it (a tuple: cheap to build a million of)."""

    id: int
    debtor_id: int
    number: str
    amount_minor: int
    paid_minor: int
    currency: str
    issue_date: date
    due_date: date
    status: str
    paused_until: date | None

    @property
    def balance_minor(self) -> int:
        return max(self.amount_minor - self.paid_minor, 0)


def _ids(value: Any) -> frozenset[int]:
    return frozenset(int(v) for v in (value or []))


def load_contexts(
    session: Session,
    today: date,
    *,
    lo: int | None = None,
    hi: int | None = None,
    debtor_ids: list[int] | None = None,
) -> dict[int, DebtorContext]:
    """Contexts for debtors with id in [lo, hi] or in `debtor_ids` (range queries, no N+1)."""

    def scope(
        column: QueryableAttribute[int] | QueryableAttribute[int | None],
    ) -> ColumnElement[bool]:
        if debtor_ids is not None:
            return column.in_(debtor_ids)
        return column.between(lo, hi)

    session.flush()  # Core reads below bypass the ORM's autoflush
    contexts: dict[int, DebtorContext] = defaultdict(DebtorContext)
    for debtor_id, invoice_id in session.connection().execute(
        select(Dispute.debtor_id, Dispute.invoice_id).where(
            scope(Dispute.debtor_id), Dispute.status == DisputeStatus.OPEN
        )
    ):
        if invoice_id is None:
            contexts[debtor_id].whole_account_disputed = True
        else:
            contexts[debtor_id].disputed_invoices.add(invoice_id)
    for debtor_id, status, promised_date, invoice_ids in session.connection().execute(
        select(Promise.debtor_id, Promise.status, Promise.promised_date, Promise.invoice_ids).where(
            scope(Promise.debtor_id),
            or_(
                Promise.status == PromiseStatus.BROKEN,
                (Promise.status == PromiseStatus.PENDING) & (Promise.promised_date >= today),
            ),
        )
    ):
        if status == PromiseStatus.BROKEN:
            contexts[debtor_id].broken_promises += 1
        else:
            contexts[debtor_id].promises.append((promised_date, _ids(invoice_ids)))
    for debtor_id, invoice_ids in session.connection().execute(
        select(PaymentPlan.debtor_id, PaymentPlan.invoice_ids).where(
            scope(PaymentPlan.debtor_id),
            PaymentPlan.status.in_([PlanStatus.ACTIVE, PlanStatus.PENDING_APPROVAL]),
        )
    ):
        contexts[debtor_id].plans.append(_ids(invoice_ids))
    for (conversation_debtor_id,) in session.connection().execute(
        select(Conversation.debtor_id)
        .outerjoin(
            Handoff,
            (Handoff.conversation_id == Conversation.id)
            & Handoff.status.in_([HandoffStatus.OPEN, HandoffStatus.ASSIGNED]),
        )
        .where(
            scope(Conversation.debtor_id),
            or_(Conversation.mode == ConversationMode.HUMAN, Handoff.id.is_not(None)),
        )
    ):
        if conversation_debtor_id is not None:  # always: the scope excludes NULL
            contexts[conversation_debtor_id].handed_off = True
    for row in session.connection().execute(
        select(
            Contact.debtor_id,
            Contact.id,
            Contact.channel,
            Contact.address,
            Contact.consent,
            Contact.opted_out_at,
            Contact.status,
        )
        .where(scope(Contact.debtor_id))
        .order_by(Contact.id)
    ):
        contexts[row[0]].contacts.append(ContactRow(*row[1:]))
    return contexts


def skip_reason(invoice: InvoiceRow, ctx: DebtorContext, today: date) -> tuple[str, str] | None:
    """Why this invoice must not be dunned today (reason, detail), or None."""
    if invoice.status == InvoiceStatus.PAID or invoice.balance_minor <= 0:
        return "paid", "nothing left to pay"
    if (
        invoice.status == InvoiceStatus.DISPUTED
        or invoice.id in ctx.disputed_invoices
        or ctx.whole_account_disputed
    ):
        return "disputed", "an open dispute pauses dunning"
    if invoice.paused_until is not None and invoice.paused_until >= today:
        return "paused", f"paused until {invoice.paused_until.isoformat()}"
    for promised_date, ids in ctx.promises:
        if promised_date >= today and (not ids or invoice.id in ids):
            return "promised", f"promise to pay by {promised_date.isoformat()}"
    for ids in ctx.plans:
        if not ids or invoice.id in ids:
            return "on_plan", "covered by a payment plan"
    if ctx.handed_off:
        return "handed_off", "a collector handles this debtor"
    return None
