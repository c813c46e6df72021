"""Payments that do not match what they pay: kept, allocated to nothing, reviewed by a person.

They are stored by `relance.ledger.service.record_payment(..., hold=Hold(...))`; this module
says what differs (`mismatches`), lists the queue and resolves it.

A payment made through a link must be for the link's amount, in its currency, by its debtor. When a
provider event says otherwise (1 USD against a 7,970.46 EUR link, a PaymentIntent naming another
debtor; issue 17.3) the money is recorded as received, but it settles nothing and the link stays
open until it is really paid. A collector then applies it to the debtor's account or closes the
review (refunded, returned) with a note. Every step is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance import audit
from relance.db.base import utcnow
from relance.db.models import Debtor, Payment
from relance.errors import Conflict, InvalidContent, NotFound, PolicyViolation
from relance.ledger.models import PaymentReview
from relance.ledger.service import Expected, PaymentOutcome, apply_payment, lock_debtor

OPEN, RESOLVED = "open", "resolved"
APPLIED, CLOSED = "applied", "closed"
MAX_NOTE_LENGTH = 2000


def mismatches(
    expected: Expected, *, amount_minor: int, currency: str, debtor_id: int
) -> list[str]:
    """Which of amount, currency and debtor differ from what was asked (empty: it matches)."""
    reasons = []
    if expected.amount_minor is not None and amount_minor != expected.amount_minor:
        reasons.append("amount")
    if expected.currency is not None and currency.upper() != expected.currency.upper():
        reasons.append("currency")
    if expected.debtor_id is not None and debtor_id != expected.debtor_id:
        reasons.append("debtor")
    return reasons


def is_held(session: Session, payment: Payment) -> bool:
    """True while the payment waits in the review queue (or was closed without being applied)."""
    review = session.scalars(
        select(PaymentReview).where(PaymentReview.payment_id == payment.id)
    ).first()
    return review is not None and review.resolution != APPLIED


@dataclass(frozen=True)
class ReviewRow:
    review: PaymentReview
    payment: Payment
    debtor: Debtor


def list_reviews(
    session: Session, *, status: str = OPEN, offset: int = 0, limit: int = 50
) -> list[ReviewRow]:
    """Oldest first while open (first come, first looked at); latest first once resolved."""
    order = PaymentReview.id.asc() if status == OPEN else PaymentReview.resolved_at.desc()
    rows = session.execute(
        select(PaymentReview, Payment, Debtor)
        .join(Payment, Payment.id == PaymentReview.payment_id)
        .join(Debtor, Debtor.id == PaymentReview.debtor_id)
        .where(PaymentReview.status == status)
        .order_by(order, PaymentReview.id)
        .offset(offset)
        .limit(limit)
    )
    return [ReviewRow(review, payment, debtor) for review, payment, debtor in rows]


def count_reviews(session: Session) -> dict[str, int]:
    return dict(
        session.execute(
            select(PaymentReview.status, func.count()).group_by(PaymentReview.status)
        ).all()
    )


def resolve(
    session: Session,
    review: PaymentReview,
    *,
    apply: bool,
    actor: str,
    note: str = "",
    now: datetime | None = None,
) -> PaymentOutcome | None:
    """Apply the held payment to its debtor's account, or close the review with a note.

    Applying allocates the money like any payment (oldest open invoices of its currency first) and
    thanks the debtor; a payment in another currency than was asked cannot be applied (it would
    turn into credit in the wrong currency) and must be closed (refunded) instead.

    Refusals are the project's errors, each with its own code, raised before anything changes:
    `Conflict("already_reviewed")`, `InvalidContent("note_too_long" | "note_required")`,
    `NotFound("payment_not_found")`, `PolicyViolation("currency_mismatch")`.
    """
    note = note.strip()
    if review.status != OPEN:
        raise Conflict("already_reviewed", "this payment has already been reviewed")
    if len(note) > MAX_NOTE_LENGTH:
        raise InvalidContent(
            "note_too_long", f"the note is longer than {MAX_NOTE_LENGTH} characters"
        )
    payment = session.get(Payment, review.payment_id)
    if payment is None:
        raise NotFound("payment_not_found", "the payment no longer exists")
    outcome = None
    if apply:
        if "currency" in (review.reasons or []):
            raise PolicyViolation(
                "currency_mismatch",
                f"a payment in {payment.currency} cannot be applied to an account in "
                f"{review.expected_currency}: refund it and close the review",
            )
        debtor = lock_debtor(session, payment.debtor_id)
        outcome = apply_payment(session, debtor, payment, recorded_by=actor)
    elif not note:
        raise InvalidContent(
            "note_required", "say what happened to the money (refunded, returned…) to close it"
        )
    review.status = RESOLVED
    review.resolution = APPLIED if apply else CLOSED
    review.resolved_by = actor[:128]
    review.resolved_at = now or utcnow()
    review.note = note or None
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="payment_review.resolved",
        entity=review,
        debtor_id=review.debtor_id,
        payment_id=payment.id,
        resolution=review.resolution,
        note=review.note,
    )
    return outcome
