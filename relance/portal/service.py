"""What a verified debtor sees on the portal and what they can do there.

Every action goes through the domain service the assistant uses (plans, promises, disputes,
payment links, contact preferences): the portal adds no rule of its own, so a plan chosen here is
the plan the assistant would accept for the same request and has the same effect on dunning. Each
action also writes a line in the debtor's conversation (channel `portal`), so collectors read it
in the same timeline as the messages.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.contacts import service as contacts
from relance.conversations.repository import conversation_for_debtor
from relance.db.base import utcnow
from relance.db.models import (
    Debtor,
    Dispute,
    Installment,
    Invoice,
    Letter,
    Message,
    PaymentLink,
    PaymentPlan,
    Promise,
)
from relance.db.models.enums import (
    Author,
    Direction,
    DisputeStatus,
    InstallmentStatus,
    InvoiceStatus,
    MessageStatus,
    PlanStatus,
)
from relance.disputes import service as disputes
from relance.errors import BadInput, NotFound, PolicyViolation
from relance.followups.charges import DISPUTED_LOST, FAILED, REFUNDED, failure_reason
from relance.handoff import service as handoff
from relance.ledger.models import InstallmentCharge, SavedPaymentMethod
from relance.ledger.ports import get_payments
from relance.letters.amounts import ClaimLine, compute_claim
from relance.nlg.formatting import money
from relance.plans import holds as plan_holds
from relance.plans import mandates
from relance.plans import repository as plans_repository
from relance.plans import service as plans
from relance.policy.service import active_policy, plan_limits_for
from relance.portal.models import PortalAttachment
from relance.private_files import einvoice_dir, private_dir, write_private
from relance.promises import service as promises
from relance.settings import get_settings

PORTAL_CHANNEL = "portal"
MAX_PLAN_OPTIONS = 6
MAX_ATTACHMENTS = 3
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
# What a dispute may carry, recognised by the file's first bytes (the browser's type is a claim).
ATTACHMENT_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}
ATTACHMENT_DIR = "portal_files"


# --- what the debtor sees -------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceLine:
    invoice: Invoice
    claim: ClaimLine

    @property
    def disputed(self) -> bool:
        return self.invoice.status == InvoiceStatus.DISPUTED


@dataclass(frozen=True)
class ChargeFailure:
    """Why the automatic payment of an instalment failed, as the message the debtor got after
    it says: `kind` names that message (card, or sepa_debit), `reason` is
    `relance.followups.charges.failure_reason` of the provider's code."""

    kind: str
    reason: str


@dataclass
class Overview:
    debtor: Debtor
    currency: str
    lines: list[InvoiceLine]
    rate_pct: float
    b2b: bool
    disputes: list[Dispute]
    # The fixed indemnity per late invoice, in euro cents; 0 when none is claimed (a consumer,
    # invoices not in euros: relance.letters.amounts.fixed_indemnity_minor).
    indemnity_unit_minor: int
    attachments: dict[int, list[PortalAttachment]]
    plans: list[PaymentPlan]
    promises: list[Promise]
    letters: list[Letter]
    mandates: list[SavedPaymentMethod] = field(default_factory=list)  # and cards on file
    direct_debit_plan_ids: list[int] = field(default_factory=list)  # offer SEPA for these
    card_plan_ids: list[int] = field(default_factory=list)  # offer a card on file for these
    balance_minor: int = 0
    extras_minor: int = 0
    payable_ids: list[int] = field(default_factory=list)
    numbers: dict[int, str] = field(default_factory=dict)  # every invoice of the debtor
    documents: dict[int, str] = field(default_factory=dict)  # invoice id -> ".pdf" / ".xml"
    live_plan_id: int | None = None  # running or awaiting approval: no second plan is offered
    charge_failures: dict[int, ChargeFailure] = field(default_factory=dict)  # by instalment id
    # Instalments whose charge succeeded and whose money went back (a card dispute lost, a
    # refund): by instalment id, the charge's status (`disputed_lost`, `refunded`).
    charge_reversals: dict[int, str] = field(default_factory=dict)
    # Invoices on hold because the creditor refunded a payment of them (an open `refunded`
    # dispute): shown as under review, not as contested by the debtor.
    refund_holds: set[int] = field(default_factory=set)
    # Instalments an open dispute holds (the debtor's, on an invoice the plan covers, or a
    # refund's): shown as on hold and not offered for payment (relance/plans/holds.py).
    held_installments: set[int] = field(default_factory=set)

    @property
    def total_minor(self) -> int:
        return self.balance_minor + self.extras_minor


def overview(session: Session, debtor: Debtor, today: date) -> Overview:
    """Open and disputed invoices with what the policy adds (the letters' own computation:
    late interest, the fixed B2B indemnity), disputes, plans, promises and letters."""
    invoices = list(
        session.scalars(
            select(Invoice)
            .where(
                Invoice.debtor_id == debtor.id,
                Invoice.status.in_([InvoiceStatus.OPEN, InvoiceStatus.DISPUTED]),
            )
            .order_by(Invoice.due_date, Invoice.id)
        )
    )
    # Instalments still to come (an invoice payable in parts) are not owed yet: not shown as due.
    invoices = [inv for inv in invoices if inv.balance_minor > 0 and not inv.not_yet_due(today)]
    claim = compute_claim(
        invoices, segment=debtor.segment, as_of=today, rules=active_policy(session).letters
    )
    by_id = {inv.id: inv for inv in invoices}
    lines = [InvoiceLine(by_id[line.invoice_id], line) for line in claim.lines]
    open_lines = [line for line in lines if not line.disputed]
    disputes_rows = list(
        session.scalars(
            select(Dispute).where(Dispute.debtor_id == debtor.id).order_by(Dispute.id.desc())
        )
    )
    attachments: dict[int, list[PortalAttachment]] = {}
    for row in session.scalars(
        select(PortalAttachment)
        .where(PortalAttachment.debtor_id == debtor.id)
        .order_by(PortalAttachment.id)
    ):
        attachments.setdefault(row.dispute_id, []).append(row)
    plans_rows = list(
        session.scalars(
            select(PaymentPlan)
            .where(PaymentPlan.debtor_id == debtor.id)
            .order_by(PaymentPlan.id.desc())
        )
    )
    mandate_rows = mandates.methods_of(session, debtor)
    automatic = {
        plan.id: kind
        for plan in plans_rows
        if (kind := mandates.automatic_kind(debtor, plan)) is not None
        and not any(m.plan_id == plan.id and m.status == mandates.ACTIVE for m in mandate_rows)
    }
    return Overview(
        debtor=debtor,
        currency=claim.currency,
        lines=lines,
        rate_pct=claim.rate_pct,
        b2b=claim.b2b,
        indemnity_unit_minor=claim.indemnity_unit_minor,
        disputes=disputes_rows,
        attachments=attachments,
        plans=plans_rows,
        mandates=[m for m in mandate_rows if m.status in (mandates.ACTIVE, mandates.PENDING)],
        direct_debit_plan_ids=[i for i, kind in automatic.items() if kind == mandates.SEPA],
        card_plan_ids=[i for i, kind in automatic.items() if kind == mandates.CARD],
        promises=list(
            session.scalars(
                select(Promise).where(Promise.debtor_id == debtor.id).order_by(Promise.id.desc())
            )
        ),
        letters=list(
            session.scalars(
                select(Letter).where(Letter.debtor_id == debtor.id).order_by(Letter.id.desc())
            )
        ),
        balance_minor=sum(line.claim.principal_minor for line in open_lines),
        extras_minor=sum(
            line.claim.interest_minor + line.claim.indemnity_minor for line in open_lines
        ),
        payable_ids=[line.invoice.id for line in open_lines],
        numbers=dict(
            session.execute(
                select(Invoice.id, Invoice.number).where(Invoice.debtor_id == debtor.id)
            ).all()
        ),
        live_plan_id=live.id if (live := plans_repository.live_plan(session, debtor.id)) else None,
        charge_failures=charge_failures(session, plans_rows),
        charge_reversals=charge_reversals(session, plans_rows),
        refund_holds={
            d.invoice_id
            for d in disputes_rows
            if d.invoice_id is not None
            and d.status == DisputeStatus.OPEN
            and d.reason == disputes.REFUNDED
        },
        held_installments={
            inst.id
            for plan in plans_rows
            for inst in plan.installments
            if inst.hold_id in {d.id for d in disputes_rows if d.status == DisputeStatus.OPEN}
        },
        documents={
            line.invoice.id: document.path.suffix.lower()
            for line in lines
            if (document := invoice_document(line.invoice)) is not None
        },
    )


def charge_failures(session: Session, plan_rows: Sequence[PaymentPlan]) -> dict[int, ChargeFailure]:
    """The unpaid instalments of running plans whose latest automatic charge failed, and why.

    Only the latest attempt counts: a new mandate's debit under way or settled replaces the
    failure, and an instalment paid since (by its link) has nothing left to explain."""
    unpaid = [
        inst.id
        for plan in plan_rows
        if plan.status == PlanStatus.ACTIVE
        for inst in plan.installments
        if inst.status != InstallmentStatus.PAID
    ]
    if not unpaid:
        return {}
    latest: dict[int, InstallmentCharge] = {}
    for row in session.scalars(
        select(InstallmentCharge)
        .where(InstallmentCharge.installment_id.in_(unpaid))
        .order_by(InstallmentCharge.installment_id, InstallmentCharge.attempt)
    ):
        latest[row.installment_id] = row
    return {
        installment_id: ChargeFailure(
            # The message a failure sends: a debit's, or else a card's (charges.FAILED_RESPONSE).
            kind=mandates.SEPA if row.kind == mandates.SEPA else mandates.CARD,
            reason=failure_reason(row.failure_code),
        )
        for installment_id, row in latest.items()
        if row.status == FAILED
    }


def charge_reversals(session: Session, plan_rows: Sequence[PaymentPlan]) -> dict[int, str]:
    """The instalments of running plans whose latest automatic charge succeeded and then went
    back (`disputed_lost`, `refunded`): the debtor sees a line saying so beside the instalment,
    which the ledger has reopened, not a silent change of its status."""
    ids = [
        inst.id
        for plan in plan_rows
        if plan.status == PlanStatus.ACTIVE
        for inst in plan.installments
    ]
    if not ids:
        return {}
    latest: dict[int, InstallmentCharge] = {}
    for row in session.scalars(
        select(InstallmentCharge)
        .where(InstallmentCharge.installment_id.in_(ids))
        .order_by(InstallmentCharge.installment_id, InstallmentCharge.attempt)
    ):
        latest[row.installment_id] = row
    return {
        installment_id: row.status
        for installment_id, row in latest.items()
        if row.status in (DISPUTED_LOST, REFUNDED)
    }


def letter_of(session: Session, debtor: Debtor, letter_id: int) -> Path:
    """The PDF of one of this debtor's letters; another debtor's letter is simply not found."""
    letter = session.get(Letter, letter_id)
    if letter is None or letter.debtor_id != debtor.id or not letter.pdf_path:
        raise NotFound("letter_not_found", "no such letter")
    path = Path(letter.pdf_path)
    if not path.is_file():
        raise NotFound("letter_not_found", "no such letter")
    return path


# The original e-invoice is served as it was received: a Factur-X PDF or a UBL/CII XML file.
DOCUMENT_TYPES = {".pdf": "application/pdf", ".xml": "application/xml"}


@dataclass(frozen=True)
class InvoiceDocument:
    path: Path
    media_type: str
    filename: str


def invoice_document(invoice: Invoice) -> InvoiceDocument | None:
    """The invoice's original document (kept by the e-invoice import), or None.

    Only a file inside the e-invoice folder, of a type we know, is ever served: a
    `document_path` pointing elsewhere (an edited row, `../`, a symbolic link out of the folder)
    is refused, as is a file that has gone.
    """
    if not invoice.document_path:
        return None
    root = einvoice_dir(get_settings().var_dir).resolve()
    path = Path(invoice.document_path).resolve()
    media_type = DOCUMENT_TYPES.get(path.suffix.lower())
    if media_type is None or not path.is_relative_to(root) or not path.is_file():
        return None
    safe_number = "".join(c if c.isalnum() or c in "-_." else "_" for c in invoice.number)
    return InvoiceDocument(path, media_type, f"invoice-{safe_number}{path.suffix.lower()}")


def invoice_document_of(session: Session, debtor: Debtor, invoice_id: int) -> InvoiceDocument:
    """One of this debtor's invoice documents; another debtor's invoice is simply not found."""
    invoice = session.get(Invoice, invoice_id)
    found = invoice_document(invoice) if invoice and invoice.debtor_id == debtor.id else None
    if found is None:
        raise NotFound("invoice_document_not_found", "no such invoice document")
    return found


# --- the conversation timeline --------------------------------------------------------------


def note_in_timeline(session: Session, debtor: Debtor, text: str, *, kind: str) -> Message:
    """A line in the debtor's conversation: collectors see portal actions among the messages."""
    conversation = conversation_for_debtor(session, debtor)
    now = utcnow()
    message = Message(
        conversation_id=conversation.id,
        direction=Direction.INBOUND,
        channel=PORTAL_CHANNEL,
        author=Author.DEBTOR,
        body=f"[portal] {text}",
        status=MessageStatus.RECEIVED,
        extra={"portal_action": kind},
        created_at=now,
    )
    session.add(message)
    conversation.last_message_at = now
    session.flush()
    return message


def _money(amount_minor: int, currency: str) -> str:
    return money(amount_minor, currency, "en")


# --- paying ---------------------------------------------------------------------------------


def start_payment(
    session: Session, debtor: Debtor, invoice_ids: Sequence[int], *, everything: bool = False
) -> str:
    """A payment link (payment_links, via the core's port) for the chosen open invoices, or,
    with `everything`, for every open invoice of the debtor (resolved here, not from the form:
    a business debtor can have more open invoices than a form may carry ids)."""
    payable = {
        inv.id
        for inv in plans_repository.open_invoices(session, debtor.id)
        if inv.balance_minor > 0
    }
    chosen = sorted(payable) if everything else sorted(set(invoice_ids))
    if not chosen:
        raise BadInput("no_invoice_chosen", "choose at least one invoice")
    if not set(chosen) <= payable:
        raise BadInput("invoice_not_payable", "these invoices cannot be paid here")
    # PolicyViolation("mixed_currencies") when the chosen invoices are in several currencies
    link, url = get_payments().create_link(
        session, debtor=debtor, purpose="balance", invoice_ids=chosen
    )
    note_in_timeline(
        session,
        debtor,
        f"opened a payment of {_money(link.amount_minor, link.currency)} "
        f"for {len(chosen)} invoice(s)",
        kind="payment_started",
    )
    return url


def pay_installment(session: Session, debtor: Debtor, installment_id: int) -> str:
    installment = session.get(Installment, installment_id)
    if (
        installment is None
        or installment.plan.debtor_id != debtor.id
        or installment.plan.status != PlanStatus.ACTIVE
        or installment.status == InstallmentStatus.PAID
    ):
        raise NotFound("installment_not_found", "no such instalment to pay")
    _, url = get_payments().create_link(
        session, debtor=debtor, purpose="installment", installment=installment
    )
    note_in_timeline(
        session,
        debtor,
        f"opened the payment of instalment {installment.seq}",
        kind="payment_started",
    )
    return url


@dataclass(frozen=True)
class PaymentBack:
    """A payment the debtor comes back from: its amount, and whether it is recorded yet."""

    amount_minor: int
    currency: str
    recorded: bool


def payment_back(session: Session, debtor: Debtor, link_id: int) -> PaymentBack | None:
    """What the overview says on the way back from a checkout started here: the link's amount,
    and whether its payment is recorded (Stripe's webhook may arrive after the debtor does).
    None for a link that is not this debtor's: nothing is said about it."""
    link = session.get(PaymentLink, link_id) if link_id else None
    if link is None or link.debtor_id != debtor.id:
        return None
    return PaymentBack(link.amount_minor, link.currency, link.paid_at is not None)


# --- plans ----------------------------------------------------------------------------------


def _plan_basis(session: Session, debtor: Debtor) -> tuple[int, str]:
    invoices = plans_repository.open_invoices(session, debtor.id)
    if not invoices:
        raise PolicyViolation("nothing_owed", "there is nothing left to pay")
    return sum(i.balance_minor for i in invoices), invoices[0].currency


def plan_options(session: Session, debtor: Debtor, today: date) -> list[plans.Proposal]:
    """Plans the assistant would agree at once, from the longest allowed to shorter ones; none
    while a plan runs or awaits approval (a second one would be refused)."""
    if plans_repository.live_plan(session, debtor.id) is not None:
        return []
    total, currency = _plan_basis(session, debtor)
    limits = plan_limits_for(session, debtor, total)
    options: list[plans.Proposal] = []
    for frequency in ("monthly", "biweekly", "weekly"):
        if frequency not in limits.allowed_frequencies:
            continue
        for count in range(limits.max_installments, 1, -1):
            evaluation = plans.evaluate(
                limits,
                total_minor=total,
                currency=currency,
                installments=count,
                frequency=frequency,
                today=today,
            )
            if evaluation.status == "within_limits" and evaluation.proposal is not None:
                options.append(evaluation.proposal)
            if len([o for o in options if o.frequency == frequency]) >= 3:
                break
    return options[:MAX_PLAN_OPTIONS]


def has_live_plan(session: Session, debtor: Debtor) -> bool:
    return plans_repository.live_plan(session, debtor.id) is not None


def evaluate_plan(
    session: Session,
    debtor: Debtor,
    *,
    installments: int,
    frequency: str,
    today: date,
    first_minor: int | None = None,
) -> plans.Evaluation:
    """The assistant's evaluation of a requested plan (within limits, counter-offer, approval).

    `first_minor` is a first payment other than an equal share, as the assistant's
    `plan_first_amount`: a counter-offer raises the first payment to the policy's floor, and
    accepting it must ask for that very schedule, not the even one the floor refused."""
    if not 2 <= installments <= 60:
        raise BadInput("bad_installments", "the number of instalments must be between 2 and 60")
    if frequency not in plans.PERIOD_DAYS:
        raise BadInput("bad_frequency", "unknown frequency")
    total, currency = _plan_basis(session, debtor)
    if first_minor is not None and not 0 < first_minor < total:
        # plans.split would quietly share the total equally instead: not what was asked.
        raise BadInput("bad_first_amount", "the first payment must be part of the amount owed")
    return plans.evaluate(
        plan_limits_for(session, debtor, total),
        total_minor=total,
        currency=currency,
        installments=installments,
        frequency=frequency,
        first_minor=first_minor,
        today=today,
    )


def accept_plan(
    session: Session,
    debtor: Debtor,
    *,
    installments: int,
    frequency: str,
    today: date,
    first_minor: int | None = None,
) -> PaymentPlan:
    """Create the plan if the assistant would agree it on its own; anything else is refused
    (the form only offers such plans, and a counter-offer is one, with its first payment)."""
    if plans_repository.live_plan(session, debtor.id) is not None:
        raise PolicyViolation("plan_exists", "a payment plan is already in place")
    evaluation = evaluate_plan(
        session,
        debtor,
        installments=installments,
        frequency=frequency,
        today=today,
        first_minor=first_minor,
    )
    if evaluation.status != "within_limits" or evaluation.proposal is None:
        raise PolicyViolation("plan_outside_limits", "this plan needs a collector's approval")
    plan = plans.create_plan(session, debtor, evaluation.proposal, actor="debtor")
    note_in_timeline(
        session,
        debtor,
        f"chose a plan: {plan.installments_count} {plan.frequency} instalments, "
        f"{_money(plan.total_minor, plan.currency)}",
        kind="plan_created",
    )
    return plan


def direct_debit_provider(session: Session, debtor: Debtor, plan_id: int) -> str:
    """The provider a mandate for this plan would be given to (the mandate text names it); the
    refusal when direct debit is not offered for the plan (`relance.plans.mandates`)."""
    mandates.offered_plan(session, debtor, plan_id)
    return mandates.provider_in_use()


def start_direct_debit(
    session: Session,
    debtor: Debtor,
    plan_id: int,
    *,
    mandate_text: str,
    locale: str,
    return_url: str,
    cancel_url: str,
) -> str:
    """The provider's mandate page for this plan (`relance.plans.mandates`); `mandate_text` is
    the text the debtor was shown, stored with the mandate."""
    url = mandates.start_sepa(
        session,
        debtor,
        plan_id,
        mandate_text=mandate_text,
        locale=locale,
        return_url=return_url,
        cancel_url=cancel_url,
    )
    note_in_timeline(
        session, debtor, "started a SEPA direct debit mandate for the plan", kind="mandate_started"
    )
    return url


def card_offer(session: Session, debtor: Debtor, plan_id: int) -> tuple[PaymentPlan, str]:
    """The plan a card on file would pay and the provider it would be given to (the consent
    text names both); the refusal when a card is not offered for the plan."""
    plan = mandates.offered_plan(session, debtor, plan_id, mandates.CARD)
    return plan, mandates.provider_in_use()


def start_card(
    session: Session,
    debtor: Debtor,
    plan_id: int,
    *,
    consent_text: str,
    locale: str,
    return_url: str,
    cancel_url: str,
) -> str:
    """The provider's page where the debtor gives the card for this plan's installments
    (`relance.plans.mandates`); `consent_text`, what the debtor was shown, is stored with it."""
    url = mandates.start_card(
        session,
        debtor,
        plan_id,
        consent_text=consent_text,
        locale=locale,
        return_url=return_url,
        cancel_url=cancel_url,
    )
    note_in_timeline(
        session, debtor, "started keeping a card on file for the plan", kind="card_started"
    )
    return url


def revoke_mandate(session: Session, debtor: Debtor, mandate_id: int) -> SavedPaymentMethod:
    """The debtor withdraws a mandate, or stops a card's automatic charges: no more debits, the
    installments go back to links."""
    saved = mandates.revoke(session, debtor, mandate_id)
    if saved.kind == mandates.SEPA:
        text, kind = (
            f"revoked the direct debit mandate {saved.mandate_reference or saved.id}",
            "mandate_revoked",
        )
    else:
        ending = f" ending {saved.last4}" if saved.last4 else ""
        text, kind = f"stopped the automatic charges of the card{ending}", "card_revoked"
    note_in_timeline(session, debtor, text, kind=kind)
    return saved


def ask_plan_approval(
    session: Session,
    debtor: Debtor,
    *,
    installments: int,
    frequency: str,
    today: date,
    first_minor: int | None = None,
) -> PaymentPlan:
    """Keep a plan outside the limits for a collector, as the assistant does (dunning pauses,
    an approval task and a handoff)."""
    if plans_repository.live_plan(session, debtor.id) is not None:
        raise PolicyViolation("plan_exists", "a payment plan is already in place")
    evaluation = evaluate_plan(
        session,
        debtor,
        installments=installments,
        frequency=frequency,
        today=today,
        first_minor=first_minor,
    )
    if evaluation.status == "within_limits" or evaluation.requested is None:
        raise PolicyViolation("plan_within_limits", "this plan can be chosen directly")
    reason = "outside_limits" if evaluation.status == "needs_approval" else "counter_offer_refused"
    plan = plans.request_approval(
        session, debtor, evaluation.requested, reason=reason, actor="debtor"
    )
    handoff.create_handoff(
        session,
        conversation_for_debtor(session, debtor),
        reason="plan_approval",
        details=reason,
        actor="debtor",
    )
    note_in_timeline(
        session,
        debtor,
        f"asked for a plan needing approval: {installments} {frequency} instalments ({reason})",
        kind="plan_approval_requested",
    )
    return plan


# --- promises -------------------------------------------------------------------------------


def promise(
    session: Session, debtor: Debtor, *, promised_date: date, amount_minor: int | None, today: date
) -> Promise:
    """A promise within the assistant's window; no amount means the whole open balance."""
    invoices = plans_repository.open_invoices(session, debtor.id)
    balance = sum(i.balance_minor for i in invoices)
    if not invoices or balance <= 0:
        raise PolicyViolation("nothing_owed", "there is nothing left to pay")
    check = promises.check_date(promised_date, today)
    if check == "past":
        raise PolicyViolation("promise_date_past", "the date is in the past")
    if check == "too_late":
        raise PolicyViolation(
            "promise_date_too_late",
            f"the date must be on or before {promises.latest_allowed(today).isoformat()}",
        )
    amount = balance if amount_minor is None else amount_minor
    if amount <= 0 or amount > balance:
        raise BadInput("bad_amount", "the amount must be positive and at most the balance")
    row = promises.record_promise(
        session,
        debtor,
        amount_minor=amount,
        promised_date=promised_date,
        currency=invoices[0].currency,
        source=PORTAL_CHANNEL,
    )
    note_in_timeline(
        session,
        debtor,
        f"promised to pay {_money(amount, row.currency)} by {promised_date.isoformat()}",
        kind="promise_recorded",
    )
    return row


# --- disputes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """A file as received: the name and type the browser gave, and the bytes."""

    filename: str
    content_type: str
    data: bytes


def _attachment_type(upload: Upload) -> str:
    for content_type, signatures in ATTACHMENT_SIGNATURES.items():
        if any(upload.data.startswith(sig) for sig in signatures):
            return content_type
    raise BadInput(
        "attachment_type",
        f"{upload.filename[:80]}: only PDF, PNG or JPEG files are accepted",
        filename=_shown_name(upload),
    )


def _shown_name(upload: Upload) -> str:
    """The refused file's name as the debtor chose it (without a path), for the error."""
    return Path(upload.filename or "file").name[:80]


def check_uploads(uploads: Sequence[Upload]) -> list[tuple[Upload, str]]:
    """Every file checked before anything is stored: count, size, real type."""
    files = [u for u in uploads if u.filename or u.data]
    if len(files) > MAX_ATTACHMENTS:
        raise BadInput("too_many_attachments", f"at most {MAX_ATTACHMENTS} files")
    checked = []
    for upload in files:
        if not upload.data:
            raise BadInput(
                "attachment_empty",
                f"{upload.filename[:80]} is empty",
                filename=_shown_name(upload),
            )
        if len(upload.data) > MAX_ATTACHMENT_BYTES:
            raise BadInput(
                "attachment_too_large",
                f"{upload.filename[:80]} is larger than 5 MB",
                filename=_shown_name(upload),
            )
        checked.append((upload, _attachment_type(upload)))
    return checked


def open_dispute(
    session: Session,
    debtor: Debtor,
    *,
    invoice_id: int,
    reason: str,
    details: str,
    uploads: Sequence[Upload] = (),
) -> Dispute:
    """The assistant's dispute (invoice out of dunning, review task), plus the files, private."""
    if reason not in disputes.REASONS:
        raise BadInput("bad_reason", "choose one of the reasons offered")
    invoice = session.get(Invoice, invoice_id)
    if invoice is None or invoice.debtor_id != debtor.id or invoice.status != InvoiceStatus.OPEN:
        raise BadInput("invoice_not_disputable", "this invoice cannot be disputed here")
    checked = check_uploads(uploads)
    dispute = disputes.create_dispute(
        session, debtor, reason=reason, details=details, invoice_id=invoice.id, actor="debtor"
    )
    folder = private_dir(get_settings().var_dir / ATTACHMENT_DIR)
    for upload, content_type in checked:
        stored = secrets.token_hex(16)
        write_private(folder / stored, upload.data)
        session.add(
            PortalAttachment(
                debtor_id=debtor.id,
                dispute_id=dispute.id,
                filename=Path(upload.filename or "file").name[:200],
                content_type=content_type,
                size_bytes=len(upload.data),
                sha256=hashlib.sha256(upload.data).hexdigest(),
                stored_name=stored,
            )
        )
    note_in_timeline(
        session,
        debtor,
        f"disputed invoice {invoice.number} ({reason}), {dispute.reference}, "
        f"{len(checked)} file(s): {(details or '').strip()[:300]}",
        kind="dispute_created",
    )
    return dispute


def dispute_done(session: Session, dispute: Dispute) -> str:
    """What the overview says once the dispute is recorded (`done_<this>`): whether it paused
    the debtor's payment plan, all of it or its last instalments, or only reminders."""
    held = plan_holds.what_is_held(session, dispute)
    if held is None:
        return "dispute"
    return "dispute_plan" if held.whole_plan else "dispute_plan_part"


def attachment_of(
    session: Session, debtor: Debtor, attachment_id: int
) -> tuple[PortalAttachment, Path]:
    row = session.get(PortalAttachment, attachment_id)
    if row is None or row.debtor_id != debtor.id:
        raise NotFound("attachment_not_found", "no such file")
    return row, get_settings().var_dir / ATTACHMENT_DIR / row.stored_name


# --- preferences ----------------------------------------------------------------------------


def set_preferences(
    session: Session,
    debtor: Debtor,
    *,
    channel: str | None,
    language: str,
    contact_from: time | None,
    contact_until: time | None,
) -> None:
    contacts.set_preferences(
        session,
        debtor,
        channel=channel,
        language=language,
        contact_from=contact_from,
        contact_until=contact_until,
        actor="debtor",
    )
    hours = (
        f"{contact_from:%H:%M}-{contact_until:%H:%M}"
        if contact_from and contact_until
        else "any legal hour"
    )
    note_in_timeline(
        session,
        debtor,
        f"set preferences: channel {channel or 'any'}, language {language}, hours {hours}",
        kind="preferences_set",
    )
