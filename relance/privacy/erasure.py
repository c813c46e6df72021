"""Right to erasure: pseudonymise a debtor, keep the accounting facts the law requires.

Kept: the customer number, invoices (numbers, amounts, dates, status), payments and their
allocations, plans and promises (amounts, dates), dispute references and outcomes, the fact and
time of each contact (channel, direction, delivery status, provider id), and the audit trail with
personal values cut out. Removed: name, company, e-mail, postal address, phone numbers, every
message body and voice transcript, free-text notes, letter PDFs, raw webhook payloads that carry
them, and the Rasa conversation. Every contact point is opted out, pending work is cancelled and
unused payment links expire, so nothing is ever sent to the person again: their reply retries
are cancelled, and the retries of answers to an "unknown sender" written from one of their
addresses (which keep the address and the e-mail itself) are deleted, with that address cut out
of the tasks left for a person to answer them.

Refused while money is still being collected or a dispute is open, unless forced with a reason
(for instance a court order or a settlement outside Relance). The caller commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from relance import audit
from relance.db.base import utcnow
from relance.db.models import (
    AuditEvent,
    Contact,
    Conversation,
    Debtor,
    Dispute,
    DunningAction,
    DunningSkip,
    Handoff,
    Invoice,
    Letter,
    Message,
    PaymentLink,
    PaymentPlan,
    PaymentReview,
    ReplyRetry,
    SavedPaymentMethod,
    Task,
    WebhookEvent,
)
from relance.db.models.enums import (
    ConversationMode,
    Direction,
    DisputeStatus,
    HandoffStatus,
    InvoiceStatus,
    LetterStatus,
    TaskStatus,
)
from relance.db.session import rowcount
from relance.errors import Conflict, InvalidContent
from relance.privacy import repository, scrub, tracker
from relance.settings import Settings, get_settings

ERASED = scrub.ERASED
ACTION = "privacy.erased"
MIN_NEEDLE = 4  # shorter values would match unrelated rows in the database-wide sweeps
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'
FREE_TEXT_KEYS = frozenset(
    {
        "address",
        "answer",
        "body",
        "comment",
        "details",
        "email",
        "from",
        "From",
        "message",
        "name",
        "note",
        "phone",
        "resolution_note",
        "speech",
        "text",
        "to",
        "To",
        "transcript",
    }
)
OUTSTANDING = (InvoiceStatus.OPEN, InvoiceStatus.DISPUTED)

TrackerPurger = Callable[[Settings, Iterable[str]], int]


@dataclass
class ErasureReport:
    debtor_id: int
    customer_number: str
    forced: bool
    blockers: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    tracker_events: int = 0
    leftovers: dict[str, int] = field(default_factory=dict)


def blockers(session: Session, debtor: Debtor) -> list[str]:
    """Why erasing now would defeat collection or a dispute (no personal data in the text)."""
    found = []
    owed = session.execute(
        select(Invoice.currency, func.count(), func.sum(Invoice.amount_minor - Invoice.paid_minor))
        .where(
            Invoice.debtor_id == debtor.id,
            Invoice.status.in_(OUTSTANDING),
            Invoice.amount_minor > Invoice.paid_minor,
        )
        .group_by(Invoice.currency)
        .order_by(Invoice.currency)
    ).all()
    for currency, count, amount in owed:
        found.append(f"open balance of {int(amount)} minor units {currency} on {count} invoice(s)")
    disputes = list(
        session.scalars(
            select(Dispute.reference)
            .where(Dispute.debtor_id == debtor.id, Dispute.status == DisputeStatus.OPEN)
            .order_by(Dispute.id)
        )
    )
    if disputes:
        found.append("open dispute(s) " + ", ".join(disputes))
    return found


def is_erased(session: Session, debtor_id: int) -> bool:
    return (
        session.scalar(
            select(AuditEvent.id)
            .where(AuditEvent.action == ACTION, AuditEvent.debtor_id == debtor_id)
            .limit(1)
        )
        is not None
    )


def personal_values(session: Session, debtor: Debtor) -> list[str]:
    """The identifying strings to hunt for elsewhere: names, e-mail, street, phone numbers."""
    values = [debtor.name, debtor.company, debtor.email, debtor.address_line]
    for address in session.scalars(select(Contact.address).where(Contact.debtor_id == debtor.id)):
        values.append(address.removeprefix("whatsapp:"))
    ids = scrub.conversation_ids(session, debtor.id)
    if ids:
        values += session.scalars(
            select(Message.address).where(Message.conversation_id.in_(ids)).distinct()
        )
    cleaned = {v.removeprefix("whatsapp:").strip() for v in values if v}
    return sorted(v for v in cleaned if len(v) >= MIN_NEEDLE and v != ERASED)


def erase(
    session: Session,
    debtor: Debtor,
    *,
    actor: str,
    reason: str,
    force: bool = False,
    settings: Settings | None = None,
    purge_tracker: TrackerPurger = tracker.purge_conversations,
    verify: bool = True,
) -> ErasureReport:
    """Pseudonymise the debtor and report what went.

    Refused before anything changes: no reason or a reason over 500 characters
    (`InvalidContent("reason_required" | "reason_too_long")`), or an open balance or dispute
    without `force` (`Conflict("erasure_refused")`, whose `blockers` detail lists them).
    """
    reason = (reason or "").strip()
    if not reason:
        raise InvalidContent(
            "reason_required", "a reason is required (it is kept in the audit trail)"
        )
    if len(reason) > 500:
        raise InvalidContent("reason_too_long", "the reason is longer than 500 characters")
    found = blockers(session, debtor)
    if found and not force:
        raise Conflict(
            "erasure_refused",
            "refused: "
            + "; ".join(found)
            + ". Settle or close these first, or force the erasure with a reason.",
            blockers=found,
        )
    settings = settings or get_settings()
    now = utcnow()
    needles = personal_values(session, debtor)
    texts = _message_texts(session, debtor.id)
    provider_ids = _provider_ids(session, debtor.id)
    senders = [
        f"debtor-{debtor.id}",
        *session.scalars(select(Conversation.sender_id).where(Conversation.debtor_id == debtor.id)),
    ]
    report = ErasureReport(debtor.id, debtor.customer_number, forced=bool(found), blockers=found)
    counts = report.counts

    debtor.name = ERASED
    debtor.company = None
    debtor.email = None
    debtor.address_line = debtor.postcode = debtor.city = None
    for contact in debtor.contacts:
        contact.address = f"erased:{contact.id}"
        contact.consent = False
        contact.opted_out_at = contact.opted_out_at or now
    counts["contacts_opted_out"] = len(debtor.contacts)
    session.flush()

    counts["messages_emptied"] = scrub.purge_messages(session, debtor.id, erase_addresses=True)
    conversation_ids = scrub.conversation_ids(session, debtor.id)
    if conversation_ids:
        counts["handoffs_closed"] = rowcount(
            session,
            update(Handoff)
            .where(
                Handoff.conversation_id.in_(conversation_ids),
                Handoff.status != HandoffStatus.CLOSED,
            )
            .values(status=HandoffStatus.CLOSED, closed_at=now),
        )
        session.execute(
            update(Conversation)
            .where(Conversation.id.in_(conversation_ids))
            .values(mode=ConversationMode.BOT, identity_verified_at=None)
        )
    session.execute(
        update(Dispute)
        .where(Dispute.debtor_id == debtor.id)
        .values(details=None, resolution_note=None)
    )
    session.execute(update(PaymentPlan).where(PaymentPlan.debtor_id == debtor.id).values(note=None))
    session.execute(
        update(PaymentReview).where(PaymentReview.debtor_id == debtor.id).values(note=None)
    )
    session.execute(
        update(DunningSkip).where(DunningSkip.debtor_id == debtor.id).values(detail=None)
    )
    session.execute(
        update(DunningAction).where(DunningAction.debtor_id == debtor.id).values(detail=None)
    )
    counts["dunning_actions_cancelled"] = rowcount(
        session,
        update(DunningAction)
        .where(
            DunningAction.debtor_id == debtor.id,
            DunningAction.status.in_(("planned", "retry", "blocked")),
        )
        .values(status="cancelled", outcome="erased", next_attempt_at=None),
    )
    counts["reply_retries_cancelled"], counts["unknown_sender_retries_deleted"] = (
        _erase_reply_retries(session, debtor, needles, now)
    )
    counts["tasks_cancelled"] = _erase_tasks(session, debtor.id, needles)
    counts["letters_cancelled"], counts["letter_pdfs_deleted"] = _erase_letters(session, debtor.id)
    counts["payment_links_revoked"] = rowcount(
        session,
        update(PaymentLink)
        .where(
            PaymentLink.debtor_id == debtor.id,
            PaymentLink.paid_at.is_(None),
            PaymentLink.expires_at > now,
        )
        .values(expires_at=now),
    )
    counts["saved_payment_methods_revoked"] = rowcount(
        session,
        update(SavedPaymentMethod)
        .where(SavedPaymentMethod.debtor_id == debtor.id, SavedPaymentMethod.revoked_at.is_(None))
        .values(revoked_at=now),
    )
    counts["webhook_events_emptied"] = _erase_webhooks(session, needles, texts, provider_ids)
    counts["audit_events_redacted"] = _redact_audit(session, debtor.id, needles, texts)
    session.flush()

    report.tracker_events = purge_tracker(settings, senders)
    audit.record(
        session,
        actor=actor,
        action=ACTION,
        entity=debtor,
        debtor_id=debtor.id,
        reason=scrub.replace_needles(reason, needles),
        forced=report.forced,
        overridden=found,
        counts=counts,
        tracker_events=report.tracker_events,
    )
    session.flush()
    if verify:
        report.leftovers = repository.leftovers(session, needles + texts)
    return report


def _message_texts(session: Session, debtor_id: int) -> list[str]:
    """What the debtor wrote or said, when long enough to be recognised elsewhere (webhook
    payloads). Our own replies are templates shared with every debtor: not searched for."""
    ids = scrub.conversation_ids(session, debtor_id)
    if not ids:
        return []
    bodies = session.scalars(
        select(Message.body)
        .where(Message.conversation_id.in_(ids), Message.direction == Direction.INBOUND)
        .distinct()
    )
    return sorted({b.strip() for b in bodies if b and len(b.strip()) >= 12})


def _provider_ids(session: Session, debtor_id: int) -> list[str]:
    ids = scrub.conversation_ids(session, debtor_id)
    if not ids:
        return []
    return [
        p
        for p in session.scalars(
            select(Message.provider_id).where(Message.conversation_id.in_(ids))
        )
        if p
    ]


def _erase_reply_retries(
    session: Session, debtor: Debtor, needles: list[str], now: datetime
) -> tuple[int, int]:
    """The debtor's own reply retries are cancelled (an error text may name their address: it
    goes); an unknown sender's answer (no message, the address and the e-mail kept) to one of
    the debtor's addresses is deleted, whatever its state."""
    contact_ids = [c.id for c in debtor.contacts]
    cancelled = 0
    if contact_ids:
        mine = ReplyRetry.contact_id.in_(contact_ids)
        cancelled = rowcount(
            session,
            update(ReplyRetry)
            .where(mine, ReplyRetry.status == "pending")
            .values(status="cancelled", finished_at=now, last_error_code="erased"),
        )
        session.execute(update(ReplyRetry).where(mine).values(last_error=None))
    addresses = {n.lower() for n in needles if "@" in n}
    deleted = 0
    if addresses:
        deleted = rowcount(
            session,
            delete(ReplyRetry).where(
                ReplyRetry.message_id.is_(None), func.lower(ReplyRetry.address).in_(addresses)
            ),
        )
    return cancelled, deleted


def _erase_tasks(session: Session, debtor_id: int, needles: list[str]) -> int:
    """The debtor's tasks, and any task naming one of their identifiers (the answer to an
    e-mail they sent from an address not yet on file, say): personal values go; open ones
    are cancelled, unless they belong to another debtor."""
    where = Task.debtor_id == debtor_id
    if needles:
        where = or_(where, repository.contains_any(Task.details, needles))
    cancelled = 0
    for task in session.scalars(select(Task).where(where)):
        keys = FREE_TEXT_KEYS if task.debtor_id == debtor_id else frozenset()
        task.details = scrub.redact(task.details or {}, needles, free_text_keys=keys)
        if task.status == TaskStatus.OPEN and task.debtor_id in (debtor_id, None):
            task.status = TaskStatus.CANCELLED
            cancelled += 1
    return cancelled


def _erase_letters(session: Session, debtor_id: int) -> tuple[int, int]:
    """Queued letters are cancelled; every PDF (it prints the name and address) is deleted."""
    cancelled = deleted = 0
    for letter in session.scalars(select(Letter).where(Letter.debtor_id == debtor_id)):
        if letter.status == LetterStatus.QUEUED:
            letter.status = LetterStatus.CANCELLED
            cancelled += 1
        if letter.pdf_path:
            path = Path(letter.pdf_path)
            if path.is_file():
                path.unlink()
                deleted += 1
            letter.pdf_path = None
    return cancelled, deleted


def _erase_webhooks(
    session: Session, needles: list[str], texts: list[str], provider_ids: list[str]
) -> int:
    """Raw provider callbacks carry the phone number and the text: keep only the id (retries
    stay harmless) and an empty answer."""
    terms = needles + texts
    conditions = []
    if terms:
        conditions.append(repository.contains_any(WebhookEvent.payload, terms))
        conditions.append(repository.contains_any(WebhookEvent.response_body, terms))
    if provider_ids:
        conditions.append(WebhookEvent.event_id.in_(provider_ids))
    if not conditions:
        return 0
    emptied = 0
    for event in session.scalars(select(WebhookEvent).where(or_(*conditions))):
        event.payload = {"erased": True}
        if event.response_body is not None:
            event.response_body = EMPTY_TWIML if event.provider == "twilio" else "{}"
        emptied += 1
    return emptied


def _redact_audit(session: Session, debtor_id: int, needles: list[str], texts: list[str]) -> int:
    """Audit rows stay (who did what, when); personal values inside their details go.

    Rows about the debtor, and any other row naming one of their identifiers (an unknown-number
    event from their phone, say)."""
    where = AuditEvent.debtor_id == debtor_id
    if needles:
        where = or_(where, repository.contains_any(AuditEvent.details, needles))
    redacted = 0
    for event in session.scalars(select(AuditEvent).where(where)):
        cleaned = scrub.redact(event.details or {}, needles + texts, free_text_keys=FREE_TEXT_KEYS)
        if cleaned != event.details:
            event.details = cleaned
            redacted += 1
    return redacted
