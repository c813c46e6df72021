"""Charging installments with what the debtor keeps on file (a card, a SEPA mandate), and what
follows the outcome, whether it comes back at once (a card) or days later by webhook (SEPA).

One `InstallmentCharge` row per attempt is written before the provider is called, and its
idempotency key (installment + attempt) goes with the call: a pass that dies after the call and
runs again computes the same attempt and key, the provider answers with the same PaymentIntent,
and the payment is recorded once (the ledger is keyed by PaymentIntent id). A committed attempt
is never repeated with the same method: after a failure the installment falls back to a payment
link, and only a new method (a new mandate) gets a new attempt.

A failure, immediate (a declined card) or late (a SEPA debit returned days later, even after it
was reported `succeeded`), gets the same follow-up: the installment reopened (a recorded payment
is reversed, `relance/ledger/reversal.py`), a follow-up task for collectors, and a message with a
payment link.
"""

from __future__ import annotations

import logging
from typing import Literal

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from relance import audit
from relance.db.base import utcnow
from relance.db.models import Debtor, Installment, PaymentPlan
from relance.followups.common import followup_task, installment_variables, link_for
from relance.ledger.models import InstallmentCharge, SavedPaymentMethod
from relance.ledger.notify import notify_debtor
from relance.ledger.ports import get_payments
from relance.ledger.reversal import reverse_payment
from relance.ledger.service import find_payment, record_payment

log = logging.getLogger(__name__)
PROCESSING, SUCCEEDED, FAILED = "processing", "succeeded", "failed"
# A failed debit whose money came back (its dispute closed `won`): final, like FAILED.
REINSTATED = "reinstated"
# A charge that succeeded and whose money went back: a card chargeback lost, a refund by the
# creditor (`reversed_ref` names the dispute or the refund). Final: no late success or event of
# the PaymentIntent turns it back into `succeeded`.
Reversal = Literal["disputed_lost", "refunded"]
DISPUTED_LOST: Reversal = "disputed_lost"
REFUNDED: Reversal = "refunded"
FINAL = (FAILED, REINSTATED, DISPUTED_LOST, REFUNDED)
Outcome = Literal["charged", "processing", "failed"]
FAILED_RESPONSE = {
    "card": "utter_installment_charge_failed",
    "sepa_debit": "utter_installment_debit_failed",
}
NOTICE_RESPONSE = {
    "card": "utter_installment_card_notice",
    "sepa_debit": "utter_installment_debit_notice",
}
# What the debtor is told of a failed charge: the provider's failure code (Stripe's codes for
# the banks' SEPA returns and card declines, which the sandbox uses too, and the two Relance
# records itself) as a reason a person can act on; the wording of each is in the failure
# messages (`relance/nlg/templates/responses.yml`). The collector's view keeps the codes'
# own labels (`console/payment_methods.py`); every code it describes has a reason here.
FAILURE_REASONS = {
    "insufficient_funds": "insufficient_funds",
    "charge_exceeds_source_limit": "over_limit",
    "account_closed": "account_closed",
    "no_account": "account_unknown",
    "invalid_account_number": "account_unknown",
    "branch_does_not_exist": "account_unknown",
    "bank_ownership_changed": "account_moved",
    "bank_account_restricted": "account_blocked",
    "account_frozen": "account_blocked",
    "debit_not_authorized": "not_authorised",
    "incorrect_account_holder_name": "holder_mismatch",
    "incorrect_account_holder_address": "holder_mismatch",
    "refer_to_customer": "ask_bank",
    "generic_could_not_process": "no_reason",
    # Cards: Stripe's error `code`, and the issuer's `decline_code` that a `card_declined`
    # carries (docs.stripe.com/declines/codes). Stripe asks that a card reported lost or stolen,
    # a suspected fraud or a blocked card be told as a generic decline: the collector still
    # reads the precise code, the debtor only that the card was declined.
    "card_declined": "card_declined",
    "generic_decline": "card_declined",
    "lost_card": "card_declined",
    "stolen_card": "card_declined",
    "fraudulent": "card_declined",
    "merchant_blacklist": "card_declined",
    "expired_card": "card_expired",
    "incorrect_cvc": "card_details",
    "invalid_cvc": "card_details",
    "incorrect_number": "card_details",
    "invalid_number": "card_details",
    "invalid_expiry_month": "card_details",
    "invalid_expiry_year": "card_details",
    "card_velocity_exceeded": "over_limit",
    "withdrawal_count_limit_exceeded": "over_limit",
    "do_not_honor": "ask_bank",
    "call_issuer": "ask_bank",
    "do_not_try_again": "ask_bank",
    "no_action_taken": "ask_bank",
    "pickup_card": "ask_bank",
    "restricted_card": "ask_bank",
    "transaction_not_allowed": "ask_bank",
    "not_permitted": "ask_bank",
    "service_not_allowed": "ask_bank",
    "card_not_supported": "card_unsupported",
    "currency_not_supported": "card_unsupported",
    "issuer_not_available": "bank_unavailable",
    "try_again_later": "bank_unavailable",
    "reenter_transaction": "bank_unavailable",
    "authentication_required": "authentication",
    "requires_action": "authentication",
    "requires_payment_method": "card_declined",
    "processing_error": "our_side",
    "provider_error": "our_side",
    "provider_mismatch": "our_side",
    "method_incomplete": "our_side",
    "unknown": "no_reason",
}
UNDESCRIBED = "no_reason"


def failure_code(code: str | None, decline_code: str | None = None) -> str | None:
    """The code a failure is recorded with: the card issuer's reason (Stripe's `decline_code`,
    e.g. `insufficient_funds` under the generic `card_declined`) when it has a reason worded
    here, else the error's `code`. A decline code without wording is logged, so that it gets
    one, and the generic code kept."""
    if decline_code in FAILURE_REASONS:
        return decline_code
    if decline_code:
        log.warning("no reason worded for the decline code %r: recorded as %r", decline_code, code)
    return code or decline_code


def failure_reason(code: str | None) -> str:
    """The reason a debtor is given for a failed charge. A code not described here is said to
    have come with no reason we can give (true for the debtor) and logged, so that it gets one."""
    reason = FAILURE_REASONS.get(code or "unknown")
    if reason is None:
        log.warning("no reason worded for the failure code %r: the debtor is told none", code)
        return UNDESCRIBED
    return reason


def active_method(session: Session, plan: PaymentPlan) -> SavedPaymentMethod | None:
    """The card or mandate kept for this plan, else the debtor's most recent active one."""
    return session.scalars(
        select(SavedPaymentMethod)
        .where(
            SavedPaymentMethod.debtor_id == plan.debtor_id,
            SavedPaymentMethod.status == "active",
            SavedPaymentMethod.revoked_at.is_(None),
        )
        .order_by(
            case((SavedPaymentMethod.plan_id == plan.id, 0), else_=1),
            SavedPaymentMethod.id.desc(),
        )
        .limit(1)
    ).first()


def already_charged(session: Session, inst: Installment, saved: SavedPaymentMethod) -> bool:
    """A charge is under way or went through, or this very method was already tried.

    A charge the creditor refunded counts for neither: its money went back, and the instalment
    is only asked for again once a collector decided it is still owed (the refund's hold kept
    it out of the follow-up pass until then), so the method kept for the plan charges it anew."""
    return (
        session.scalar(
            select(InstallmentCharge.id)
            .where(
                InstallmentCharge.installment_id == inst.id,
                InstallmentCharge.status != REFUNDED,
                (InstallmentCharge.status != FAILED)
                | (InstallmentCharge.saved_method_id == saved.id),
            )
            .limit(1)
        )
        is not None
    )


def debit_processing(session: Session, inst: Installment) -> bool:
    """A SEPA debit of this installment is on its way: it is neither missed nor to be reminded."""
    return (
        session.scalar(
            select(InstallmentCharge.id)
            .where(
                InstallmentCharge.installment_id == inst.id,
                InstallmentCharge.status == PROCESSING,
            )
            .limit(1)
        )
        is not None
    )


def charge(
    session: Session, inst: Installment, saved: SavedPaymentMethod, debtor: Debtor
) -> Outcome:
    """Claim the next attempt, call the provider with its idempotency key, apply the outcome."""
    attempt = 1 + int(
        session.scalar(
            select(func.coalesce(func.max(InstallmentCharge.attempt), 0)).where(
                InstallmentCharge.installment_id == inst.id
            )
        )
        or 0
    )
    amount = inst.amount_minor - inst.paid_minor
    row = InstallmentCharge(
        installment_id=inst.id,
        saved_method_id=saved.id,
        debtor_id=debtor.id,
        attempt=attempt,
        kind=saved.kind,
        provider=saved.provider,
        amount_minor=amount,
        currency=inst.plan.currency,
        idempotency_key=f"relance-installment-{inst.id}-attempt-{attempt}",
        status=PROCESSING,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor="system",
        action="installment.charge_attempted",
        entity=inst,
        debtor_id=debtor.id,
        amount_minor=amount,
        saved_card_id=saved.id,
        kind=saved.kind,
        charge_id=row.id,
        attempt=attempt,
    )
    result = get_payments().charge_saved_method(
        session,
        saved=saved,
        installment=inst,
        amount_minor=amount,
        idempotency_key=row.idempotency_key,
    )
    row.provider_ref = result.provider_ref
    if result.succeeded and result.provider_ref:
        settled(
            session,
            row,
            amount_minor=result.amount_minor or amount,
            currency=result.currency,
            actor="system:off_session",
        )
        return "charged"
    if result.pending and result.provider_ref:
        audit.record(
            session,
            actor="system",
            action="installment.debit_processing",
            entity=inst,
            debtor_id=debtor.id,
            provider_ref=result.provider_ref,
            charge_id=row.id,
        )
        return "processing"
    failed(
        session,
        row,
        code=result.error_code,
        decline_code=result.decline_code,
        message=result.error_message,
        actor="system",
    )
    return "failed"


def settled(
    session: Session, row: InstallmentCharge, *, amount_minor: int, currency: str, actor: str
) -> None:
    """The money arrived: record it against the installment (once per PaymentIntent)."""
    if row.status in FINAL:
        return  # a late success after a failure or a reversal we already acted on
    row.status = SUCCEEDED
    row.settled_at = row.settled_at or utcnow()
    if row.provider_ref is None:
        raise ValueError("a settled charge needs its PaymentIntent id")
    record_payment(
        session,
        debtor_id=row.debtor_id,
        amount_minor=amount_minor,
        currency=currency,
        method=row.kind,
        provider=row.provider,
        provider_ref=row.provider_ref,
        installment_id=row.installment_id,
        recorded_by=actor,
    )


def failed(
    session: Session,
    row: InstallmentCharge,
    *,
    code: str | None,
    message: str | None,
    actor: str,
    decline_code: str | None = None,
    amount_minor: int | None = None,
    ref: str | None = None,
) -> bool:
    """The charge failed, now or days after it was reported paid: reverse what it paid, then
    the follow-up of a failed charge. False when this failure was already handled.

    A declined card is recorded with its issuer's reason when there is one (`failure_code`). A
    SEPA refund request (a dispute, `ref`) may take back only `amount_minor` of the debit. A
    reinstated charge's story is over (its dispute closed `won`), and so is one charged back (a
    dispute lost took its money): nothing more is reversed."""
    if row.status in (FAILED, REINSTATED, DISPUTED_LOST):
        return False
    was_paid = row.status == SUCCEEDED
    row.status = FAILED
    row.failure_code = (failure_code(code, decline_code) or "unknown")[:64]
    row.failed_at = utcnow()
    inst = session.get(Installment, row.installment_id)
    debtor = session.get(Debtor, row.debtor_id)
    if inst is None or debtor is None:
        return True
    reversed_payment = False
    payment = find_payment(session, row.provider_ref) if row.provider_ref else None
    if payment is not None:
        reversed_payment = reverse_payment(
            session,
            payment,
            reason=row.failure_code,
            actor=actor,
            amount_minor=amount_minor,
            ref=ref,
        )
    task = followup_task(
        session,
        debtor.id,
        "charge_failed",
        installment_id=inst.id,
        plan_id=inst.plan_id,
        kind=row.kind,
        code=row.failure_code,
        late=was_paid,
        **({"dispute_ref": ref} if ref else {}),
    )
    audit.record(
        session,
        actor=actor,
        action="installment.charge_failed",
        entity=inst,
        debtor_id=debtor.id,
        provider_ref=row.provider_ref,
        code=row.failure_code,
        provider_code=code,
        decline_code=decline_code,
        message=message,
        kind=row.kind,
        charge_id=row.id,
        late=was_paid,
        payment_reversed=reversed_payment,
        task_id=task.id,
    )
    url = link_for(session, debtor, "installment", installment=inst)
    notify_debtor(
        session,
        debtor,
        FAILED_RESPONSE.get(row.kind, FAILED_RESPONSE["card"]),
        {**installment_variables(inst, url), "failure_reason": failure_reason(row.failure_code)},
        reason=f"installment:{inst.id}",
    )
    return True


def reinstated(session: Session, row: InstallmentCharge, *, dispute_ref: str, actor: str) -> bool:
    """The dispute that failed this charge closed `won`: its money came back and was recorded
    again (under the dispute id, `relance/followups/chargebacks.py`), so the charge row says
    `reinstated` with that dispute id rather than `failed`; the failure code and date stay, as
    the return did happen. False when there is nothing to change (already reinstated, or the
    charge did not fail)."""
    if row.status != FAILED:
        return False
    row.status = REINSTATED
    row.reinstated_ref = dispute_ref[:128]
    row.reinstated_at = utcnow()
    audit.record(
        session,
        actor=actor,
        action="installment.charge_reinstated",
        entity=row,
        debtor_id=row.debtor_id,
        installment_id=row.installment_id,
        charge_id=row.id,
        provider_ref=row.provider_ref,
        dispute_ref=dispute_ref,
        failure_code=row.failure_code,
    )
    return True


def reversed_after_success(
    session: Session, row: InstallmentCharge, *, status: Reversal, ref: str, actor: str
) -> bool:
    """The money of a charge that succeeded went back: a card dispute lost (`DISPUTED_LOST`, `ref`
    the dispute id) or a refund by the creditor (`REFUNDED`, `ref` the refund id). The payment is
    reversed by the caller (`relance/ledger/reversal.py`); the row says so with `ref`, so the
    portal, the console and the exports stop saying `succeeded`. False when there is nothing to
    change: the charge did not succeed, or its story already ended (failed, reinstated, reversed:
    a second partial refund keeps the first refund's id)."""
    if row.status != SUCCEEDED:
        return False
    row.status = status
    row.reversed_ref = ref[:128]
    row.reversed_at = utcnow()
    audit.record(
        session,
        actor=actor,
        action=f"installment.charge_{status}",
        entity=row,
        debtor_id=row.debtor_id,
        installment_id=row.installment_id,
        charge_id=row.id,
        provider_ref=row.provider_ref,
        ref=ref,
    )
    return True
