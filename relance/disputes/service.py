"""Disputes raised in conversation: classify the reason, register it, pause dunning, tell people.

An open `Dispute` is enough to pause dunning (the planner skips disputed invoices, or the whole
account when the dispute names no invoice); a review task puts it in front of a collector. The
debtor's dispute also holds the instalments of a running plan that would ask for the contested
money (`relance/plans/holds.py`): a plan's reminders and charges are the follow-up pass's, which
the planner's pause does not reach.
"""

from __future__ import annotations

import re
import secrets
from functools import lru_cache
from pathlib import Path

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance import audit
from relance.db.models import Debtor, Dispute, Invoice, Task
from relance.db.models.enums import DisputeStatus, InvoiceStatus
from relance.disputes import repository
from relance.errors import Conflict
from relance.nlu_normalise import fold
from relance.outbox.service import emit
from relance.plans import holds

REASONS = ("not_received", "wrong_amount", "defective", "not_mine", "other")
# Reasons Relance itself opens a dispute for, never offered to the debtor: `refunded`, a payment
# the creditor refunded from Stripe, whose invoice waits for a collector to decide whether it is
# still owed (`relance/followups/refunds.py`).
REFUNDED = "refunded"
SYSTEM_REASONS = (REFUNDED,)
REVIEW_TASK = "dispute_review"
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@lru_cache
def _keywords() -> dict[str, list[str]]:
    with (Path(__file__).parent / "reasons.yml").open(encoding="utf-8") as fh:
        loaded: dict[str, list[str]] = yaml.safe_load(fh)
    return loaded


# "forget the dispute", "laissez tomber la contestation", "i want to cancel the disputes, i will
# pay": DIET reads them as dispute_debt (0.99, the dispute's own words), the dispute form took
# them as the reason, and each opened one more dispute (three in a row in the simulator).
_WITHDRAW = re.compile(
    r"\b(forget|cancel|drop|withdraw|never ?mind|nevermind|annul\w*|laiss\w* tomber|oubli\w*"
    r"|retir\w*|abandonn\w*|stop)\b"
)
_DISPUTE_NOUN = re.compile(
    r"\b(disputes?|contestations?|litiges?|reclamations?|complaints?|claims?)\b"
)
_BARE_WITHDRAWAL = re.compile(
    r"^(ok |non |no |bon |ah |euh )*(forget it|never ?mind|nevermind|laissez tomber|laisse tomber"
    r"|oubliez|oublie|oubliez ca|oublie ca|cancel( it| that)?|drop it|annulez|annule)[ .!]*$"
)


def withdraws_dispute(text: str | None) -> bool:
    """The words take a dispute back: a withdrawal verb with a dispute named, or a bare
    "forget it" / "laissez tomber". "cancel the order, it never arrived" names no dispute: a
    reason, not a withdrawal."""
    folded = re.sub(r"['’\-]", " ", fold(text or ""))
    if _BARE_WITHDRAWAL.match(folded):
        return True
    return bool(_WITHDRAW.search(folded) and _DISPUTE_NOUN.search(folded))


def classify_reason(text: str | None) -> str | None:
    """A reason code from the debtor's words; None when nothing is recognisable.

    The bare codes and the option words the question offers ("autre", "other") are accepted too.
    """
    if not text:
        return None
    folded = fold(text)
    if folded in REASONS:
        return folded
    for reason, words in _keywords().items():
        if any(w in folded for w in words):
            return reason
    if folded in ("autre", "other", "autre chose", "something else", "else"):
        return "other"
    return None


def new_reference(session: Session) -> str:
    while True:
        reference = "LIT-" + "".join(secrets.choice(_ALPHABET) for _ in range(6))
        if not repository.reference_taken(session, reference):
            return reference


def create_dispute(
    session: Session,
    debtor: Debtor,
    *,
    reason: str,
    details: str | None,
    invoice_id: int | None = None,
    actor: str = "bot",
) -> Dispute:
    """Register a dispute; it names the invoice when there is exactly one open, else the account.

    The debtor's dispute holds the instalments of their running plans that ask for what it
    contests (`holds.held_by(session, dispute)` names them); a hold Relance opens itself (a
    refund's) holds what its caller says."""
    if reason not in REASONS + SYSTEM_REASONS:
        reason = "other"
    if invoice_id is None:
        invoices = repository.open_invoices(session, debtor.id)
        if len(invoices) == 1:
            invoice_id = invoices[0].id
    if invoice_id is not None:
        invoice = session.get(Invoice, invoice_id)
        if invoice is not None and invoice.status == InvoiceStatus.OPEN:
            invoice.status = InvoiceStatus.DISPUTED  # out of balances and payment links
    dispute = Dispute(
        reference=new_reference(session),
        debtor_id=debtor.id,
        invoice_id=invoice_id,
        reason=reason,
        details=(details or "").strip()[:2000] or None,
    )
    session.add(dispute)
    session.flush()
    own = reason in SYSTEM_REASONS
    installment_ids: list[int] = []
    if not own:
        installment_ids = [inst.id for inst in holds.hold_contested(session, dispute, actor=actor)]
        # A hold Relance opens itself comes with its caller's own task, which names it (the
        # refund's "decide whether the debt is still owed"): one task per decision, not two.
        # The collector sees which plan instalments wait for the decision.
        session.add(
            Task(
                kind=REVIEW_TASK,
                debtor_id=debtor.id,
                details={
                    "dispute_id": dispute.id,
                    "reference": dispute.reference,
                    "reason": reason,
                    "installment_ids": installment_ids,
                },
            )
        )
    audit.record(
        session,
        actor=actor,
        action="dispute.created",
        entity=dispute,
        debtor_id=debtor.id,
        reason=reason,
        invoice_id=invoice_id,
        reference=dispute.reference,
        installment_ids=installment_ids,
    )
    if not own:  # the debtor disputes; a refund the creditor made itself is no news to it
        emit(
            session,
            "dispute.opened",
            debtor_id=debtor.id,
            dispute_id=dispute.id,
            reference=dispute.reference,
            invoice_id=invoice_id,
        )
    return dispute


def _still_held(session: Session, dispute_ids: list[int]) -> bool:
    """Whether any of these disputes is still open (flushed state, this transaction's included)."""
    session.flush()
    return bool(
        session.scalar(
            select(func.count())
            .select_from(Dispute)
            .where(Dispute.id.in_(dispute_ids), Dispute.status == DisputeStatus.OPEN)
        )
    )


def _other_open_dispute_on(session: Session, dispute: Dispute) -> bool:
    """Whether another open dispute names the same invoice."""
    session.flush()
    return bool(
        session.scalar(
            select(func.count())
            .select_from(Dispute)
            .where(
                Dispute.invoice_id == dispute.invoice_id,
                Dispute.id != dispute.id,
                Dispute.status == DisputeStatus.OPEN,
            )
        )
    )


def decide_dispute(
    session: Session, dispute: Dispute, *, upheld: bool, note: str, actor: str
) -> None:
    """A collector closes the dispute (added by the console work).

    Upheld: the invoice is cancelled, so dunning on it stops for good. Rejected: the invoice is
    open again and dunning resumes. The review task is marked done either way. A dispute
    already closed is `Conflict("dispute_closed")`.

    The decision is the plans' too (`relance/plans/holds.py`): rejected, the instalments the
    dispute held are due again (the follow-up pass only skipped them while it was open);
    upheld, the running plans it held or that cover its invoice stop asking for what their
    invoices no longer owe.
    """
    from sqlalchemy import select

    from relance.db.base import utcnow
    from relance.db.models import Invoice
    from relance.db.models.enums import DisputeStatus, InvoiceStatus, TaskStatus

    if dispute.status != DisputeStatus.OPEN:
        raise Conflict("dispute_closed", f"Dispute {dispute.reference} is already {dispute.status}")
    dispute.status = DisputeStatus.RESOLVED if upheld else DisputeStatus.REJECTED
    dispute.resolution_note = note.strip()[:4000]
    dispute.resolved_at = utcnow()
    dispute.resolved_by = actor[:64]
    invoice = session.get(Invoice, dispute.invoice_id) if dispute.invoice_id else None
    cancelled = False
    if invoice is not None and invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.DISPUTED):
        if upheld:
            invoice.status = InvoiceStatus.CANCELLED
            cancelled = True
        elif not _other_open_dispute_on(session, dispute):
            invoice.status = InvoiceStatus.OPEN
        # else: still under another open dispute (the debtor's and a refund's on one invoice):
        # out of balances and links until that one is decided too.
    plans_settled: list[int] = []
    if upheld:
        plans_settled = holds.settle_upheld(session, dispute, actor=actor)
    # What it held and another open dispute still questions stays held, by that one.
    rehold = [inst.id for inst in holds.release(session, dispute, actor=actor)]
    for task in session.scalars(
        select(Task).where(Task.debtor_id == dispute.debtor_id, Task.status == TaskStatus.OPEN)
    ):
        details = task.details or {}
        if task.kind == REVIEW_TASK and details.get("dispute_id") == dispute.id:
            task.status = TaskStatus.DONE
        elif dispute.id in (details.get("dispute_ids") or []) and not _still_held(
            session, details["dispute_ids"]
        ):
            # A task that holds several invoices (a refund's) is done once all are decided.
            task.status = TaskStatus.DONE
    audit.record(
        session,
        actor=actor,
        action="dispute.resolved" if upheld else "dispute.rejected",
        entity=dispute,
        debtor_id=dispute.debtor_id,
        invoice_id=dispute.invoice_id,
        invoice_status=invoice.status if invoice is not None else None,
        # This decision cancelled the invoice (a hold may name one cancelled before: the
        # accounting export counts a cancellation once).
        invoice_cancelled=cancelled,
        plans_settled=plans_settled,
        installments_held_again=rehold,
        note=note[:500],
    )
    emit(
        session,
        "dispute.resolved",
        debtor_id=dispute.debtor_id,
        dispute_id=dispute.id,
        reference=dispute.reference,
        outcome="upheld" if upheld else "rejected",
        invoice_id=dispute.invoice_id,
        invoice_status=invoice.status if invoice is not None else None,
    )
