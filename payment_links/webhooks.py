"""Stripe webhook processing, shared by real Stripe events and the sandbox checkout.

Order of operations: verify the signature (nothing is stored for a forgery), claim the event id
with an insert-on-conflict-do-nothing (a retried event is acknowledged and ignored), then apply it.
Payments are keyed by PaymentIntent id, so `checkout.session.completed` and
`payment_intent.succeeded` for one payment, in either order, record it once.

A signed event we cannot read (a JSON list, no `data.object`, an amount that is a string or
negative) is answered 400 with the reason and nothing is stored (issue 17.4). Retrying it is
pointless, but a 4xx keeps the failed delivery visible in Stripe's dashboard, where a 200 would
hide money we could not account for; event types we do not handle are acknowledged unread.
A payment whose amount, currency or debtor differs from its link is recorded but held for a
collector's review, and the link stays open (`relance/ledger/review.py`, issue 17.3).

SEPA Direct Debit (issue 20): `setup_intent.succeeded` makes a pending mandate (or a card kept
on file for a plan outside the euro zone) active,
`mandate.updated` to inactive stops debiting it, and `payment_intent.succeeded` /
`payment_failed` carrying `relance_charge_key` settle or fail the installment charge the worker
made (`relance/followups/charges.py`); a failure after a success reverses the payment.

Disputes (`charge.dispute.created`, `.updated`, `.closed`), found by their `payment_intent`
(our payments are keyed by PaymentIntent id): on a `sepa_debit` payment, the debtor's refund
request, the payment is reversed at once by the late-failure path; on a card, a collector task,
and the payment is reversed only when the dispute is `lost` (`relance/followups/chargebacks.py`).
Every status Stripe publishes is accepted on every dispute event (one that needs no action is
recorded and answered 2xx); only a status outside that list is refused.
A dispute on no payment of ours, or in another currency, or for more than it, is a 4xx and
nothing is stored: money taken back that we cannot place must stay visible in Stripe.

Refunds made from Stripe's dashboard (`refund.created`, `refund.updated`, and the refunds a
`charge.refunded` lists), found by their `payment_intent`: a `succeeded` refund reverses exactly
its amount of the payment, once per refund id, and holds what it reopened for a collector
(`relance/followups/refunds.py`). A refund of no payment of ours is kept for review and answered
2xx (nothing of ours changes, and Stripe would retry a 4xx for days); one in another currency or
for more than the payment is a 4xx and nothing is stored.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import stripe
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from payment_links.providers import PaymentProvider, ProviderError
from relance import audit
from relance.db.base import utcnow
from relance.db.models import Debtor, Installment, Payment, PaymentLink, WebhookEvent
from relance.errors import BadInput, NotFound, Unavailable
from relance.followups import chargebacks, charges, refunds
from relance.ledger import review
from relance.ledger.models import InstallmentCharge, SavedPaymentMethod
from relance.ledger.service import Expected, Hold, PaymentOutcome, find_payment, record_payment
from relance.plans import mandates
from relance.portfolio.rows import MAX_MINOR

log = logging.getLogger(__name__)
PROVIDER = "stripe"
TOLERANCE_SECONDS = 300
MAX_ROW_ID = 2_147_483_647  # PostgreSQL INTEGER keys
_CURRENCY = re.compile(r"[A-Za-z]{3}")
_TIMESTAMP = re.compile(r"(?:^|,)\s*t=(\d{1,12})\s*(?:,|$)")


class InvalidSignature(BadInput):
    """Missing, malformed, stale, future-dated or forged Stripe-Signature.

    A BadInput (400), not Forbidden: Stripe's documentation asks endpoints to answer 400 to an
    event they refuse, and its dashboard then shows the failed delivery."""

    def __init__(self, reason: str) -> None:
        super().__init__("invalid_signature", "Stripe-Signature verification failed")
        self.reason = reason  # logged, never sent back: it would help a forger


class MalformedEvent(BadInput):
    """A correctly signed body that is not an event we can read; nothing is stored. 400 keeps
    the failed delivery visible in Stripe's dashboard."""

    def __init__(self, message: str) -> None:
        super().__init__("malformed_event", message)


def verify(
    payload: bytes, signature: str | None, secret: str, *, now: float | None = None
) -> dict[str, Any]:
    """Check Stripe-Signature (HMAC-SHA256, 5 minutes either way) and parse the event."""
    if not secret.strip():
        # Anyone can sign with an empty key: nothing is accepted until a secret is configured.
        raise InvalidSignature("no webhook secret is configured")
    if not signature:
        raise InvalidSignature("missing Stripe-Signature header")
    try:
        stripe.WebhookSignature.verify_header(payload, signature, secret, TOLERANCE_SECONDS)
    except (ValueError, stripe.SignatureVerificationError) as exc:
        raise InvalidSignature(str(exc)) from exc
    # Stripe's library only refuses old timestamps; one from the future would stay replayable
    # until that date (issue 17.7).
    stamp = _TIMESTAMP.search(signature)
    if stamp is None or int(stamp.group(1)) > (now or time.time()) + TOLERANCE_SECONDS:
        raise InvalidSignature("Stripe-Signature timestamp is in the future")
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise MalformedEvent("the body is not JSON") from exc
    if not isinstance(event, dict):
        raise MalformedEvent("not a Stripe event: the body must be a JSON object")
    for key in ("id", "type"):
        if not isinstance(event.get(key), str) or not event[key]:
            raise MalformedEvent(f"not a Stripe event: `{key}` must be a non-empty string")
    return event


def event_object(event: dict[str, Any]) -> dict[str, Any]:
    """`data.object`, which every event we handle must carry."""
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise MalformedEvent(f"{event['type']}: `data.object` must be an object")
    if not isinstance(obj.get("metadata") or {}, dict):
        raise MalformedEvent(f"{event['type']}: `metadata` must be an object")
    return obj


def minor_units(obj: dict[str, Any], *keys: str) -> int | None:
    """The first of `keys` present, as a non-negative integer number of minor units."""
    for key in keys:
        value = obj.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_MINOR:
            raise MalformedEvent(
                f"`{key}` must be a non-negative integer amount in minor units, not {value!r:.40}"
            )
        return value
    return None


def currency_of(obj: dict[str, Any]) -> str:
    value = obj.get("currency")
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise MalformedEvent("`currency` must be a three-letter ISO 4217 code")
    return value.upper()


def _validate_checkout(obj: dict[str, Any]) -> None:
    if obj.get("payment_status") in ("paid", "no_payment_required"):
        if minor_units(obj, "amount_total") is None:
            raise MalformedEvent("`amount_total` is missing from a paid checkout session")
        currency_of(obj)


def _validate_intent_succeeded(obj: dict[str, Any]) -> None:
    if not isinstance(obj.get("id"), str) or not obj["id"]:
        raise MalformedEvent("`id` of the payment intent is missing")
    if minor_units(obj, "amount_received", "amount") is None:
        raise MalformedEvent("`amount_received` (or `amount`) is missing")
    currency_of(obj)


def _validate_intent_failed(obj: dict[str, Any]) -> None:
    minor_units(obj, "amount")
    if not isinstance(obj.get("last_payment_error") or {}, dict):
        raise MalformedEvent("`last_payment_error` must be an object")


def _ref(obj: dict[str, Any], key: str) -> str | None:
    """An id field that Stripe sends as a string, or expanded as an object with an `id`."""
    value = obj.get(key)
    return _text(value.get("id") if isinstance(value, dict) else value)


def _text(value: object) -> str | None:
    """A string Stripe sends (an id, a code); anything else (a malformed event) is absent."""
    return value if isinstance(value, str) and value else None


def _validate_setup_succeeded(obj: dict[str, Any]) -> None:
    """A card's SetupIntent has no mandate; a SEPA Direct Debit one must."""
    for key in ("id", "payment_method"):
        if _ref(obj, key) is None:
            raise MalformedEvent(f"`{key}` of the setup intent is missing")
    types = obj.get("payment_method_types")
    if not isinstance(types, list) or not types:
        raise MalformedEvent("`payment_method_types` of the setup intent must be a list")
    if "sepa_debit" in types and _ref(obj, "mandate") is None:
        raise MalformedEvent("`mandate` of a SEPA Direct Debit setup intent is missing")


def _validate_mandate(obj: dict[str, Any]) -> None:
    if not isinstance(obj.get("id"), str) or not obj["id"]:
        raise MalformedEvent("`id` of the mandate is missing")
    if not isinstance(obj.get("status"), str):
        raise MalformedEvent("`status` of the mandate must be a string")


def _validate_dispute(obj: dict[str, Any]) -> None:
    if obj.get("object") != "dispute":
        raise MalformedEvent("`object` must be `dispute`")
    if not isinstance(obj.get("id"), str) or not obj["id"]:
        raise MalformedEvent("`id` of the dispute is missing")
    if _ref(obj, "payment_intent") is None:
        raise MalformedEvent("`payment_intent` of the dispute is missing")
    if minor_units(obj, "amount") is None:
        raise MalformedEvent("`amount` of the dispute is missing")
    currency_of(obj)
    if not isinstance(obj.get("reason"), str):
        raise MalformedEvent("`reason` of the dispute must be a string")
    if obj.get("status") not in (*chargebacks.OPEN_STATUSES, *chargebacks.CLOSED_STATUSES):
        raise MalformedEvent(f"`status` of the dispute is unknown: {obj.get('status')!r:.40}")


def _validate_refund(obj: dict[str, Any]) -> None:
    """A Refund object (`refund.created`, `refund.updated`, or listed in a charge)."""
    if obj.get("object") != "refund":
        raise MalformedEvent("`object` must be `refund`")
    if not isinstance(obj.get("id"), str) or not obj["id"]:
        raise MalformedEvent("`id` of the refund is missing")
    if minor_units(obj, "amount") is None:
        raise MalformedEvent("`amount` of the refund is missing")
    currency_of(obj)
    if obj.get("status") not in refunds.STATUSES:
        raise MalformedEvent(f"`status` of the refund is unknown: {obj.get('status')!r:.40}")
    if obj.get("reason") is not None and not isinstance(obj.get("reason"), str):
        raise MalformedEvent("`reason` of the refund must be a string or null")
    intent = obj.get("payment_intent")
    if intent is not None and _ref(obj, "payment_intent") is None:
        raise MalformedEvent("`payment_intent` of the refund must be an id")


def _listed_refunds(obj: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The refunds a Charge lists (`refunds.data`), or None when Stripe left them out (API
    versions since 2022-11-15 do unless the endpoint expands them)."""
    listed = obj.get("refunds")
    if listed is None:
        return None
    data = listed.get("data") if isinstance(listed, dict) else None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise MalformedEvent("`refunds.data` of the charge must be a list of refunds")
    return data


def _validate_charge_refunded(obj: dict[str, Any]) -> None:
    if obj.get("object") != "charge":
        raise MalformedEvent("`object` must be `charge`")
    if not isinstance(obj.get("id"), str) or not obj["id"]:
        raise MalformedEvent("`id` of the charge is missing")
    if minor_units(obj, "amount_refunded") is None:
        raise MalformedEvent("`amount_refunded` of the charge is missing")
    currency_of(obj)
    for item in _listed_refunds(obj) or []:
        _validate_refund(item)


def claim(session: Session, event: dict[str, Any]) -> bool:
    """Store the event id once. False when it was already stored (a retry or a replay)."""
    values = {
        "provider": PROVIDER,
        "event_id": str(event["id"])[:128],
        "kind": str(event["type"])[:64],
        "payload": event,
        "received_at": utcnow(),
    }
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(WebhookEvent)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["provider", "event_id"])
        .returning(WebhookEvent.id)
    )
    return session.execute(stmt).scalar_one_or_none() is not None


def process(
    session: Session,
    payload: bytes,
    signature: str | None,
    *,
    secret: str,
    provider: PaymentProvider,
) -> dict[str, Any]:
    """Verify, validate, claim, apply. Returns the JSON body to answer; raises InvalidSignature
    on forgery and MalformedEvent on a signed body we cannot read (both before storing anything)."""
    try:
        event = verify(payload, signature, secret)
    except InvalidSignature as exc:
        log.warning("Stripe event refused: %s", exc.reason)
        raise
    except MalformedEvent as exc:
        log.warning("Stripe event refused: %s", exc.message)
        raise
    handled = HANDLERS.get(event["type"])
    obj: dict[str, Any] = {}
    if handled is not None:
        validate, _handler = handled
        try:
            obj = event_object(event)
            validate(obj)
        except MalformedEvent as exc:
            log.warning("Stripe event %s refused: %s", event["id"], exc.message)
            raise
    if not claim(session, event):
        return {"received": True, "duplicate": True}
    outcome = handled[1](session, obj, provider) if handled is not None else "ignored"
    body = {"received": True, "outcome": outcome}
    row = session.query(WebhookEvent).filter_by(provider=PROVIDER, event_id=event["id"]).one()
    row.processed_at = utcnow()
    row.response_body = json.dumps(body)
    return body


def _row_id(value: str | None) -> int | None:
    """One of our ids from provider metadata; None unless it can be a row id (never overflows)."""
    if not value or not value.isascii() or not value.isdigit() or len(value) > 10:
        return None
    number = int(value)
    return number if 0 < number <= MAX_ROW_ID else None


def _metadata(obj: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (obj.get("metadata") or {}).items()}


def _link(session: Session, obj: dict[str, Any]) -> PaymentLink | None:
    link_id = _metadata(obj).get("relance_link_id")
    if _row_id(link_id) is not None:
        return session.get(PaymentLink, _row_id(link_id))
    if obj.get("object") == "checkout.session" and obj.get("id"):
        return session.query(PaymentLink).filter_by(provider_session_id=obj["id"]).first()
    return None


def _provider_name(obj: dict[str, Any]) -> str:
    return _metadata(obj).get("relance_provider") or PROVIDER


def _metadata_debtor(obj: dict[str, Any]) -> int | None:
    value = _metadata(obj).get("relance_debtor_id", "")
    return _row_id(value)


def _expected(session: Session, link: PaymentLink | None, installment_id: int | None) -> Expected:
    """What the payment should be: the link's amount, currency and debtor; for a charge of a
    saved card, the installment's plan currency and debtor."""
    if link is not None:
        return Expected(link.amount_minor, link.currency, link.debtor_id)
    installment = session.get(Installment, installment_id) if installment_id else None
    if installment is not None:
        return Expected(None, installment.plan.currency, installment.plan.debtor_id)
    return Expected(None, None, None)


def _record(
    session: Session,
    obj: dict[str, Any],
    *,
    debtor_id: int,
    amount_minor: int,
    currency: str,
    provider_ref: str,
    link: PaymentLink | None,
    installment_id: int | None,
) -> tuple[PaymentOutcome, bool]:
    """Record the payment, or hold it for review when it is not what was asked; (outcome, held)."""
    actor = f"{_provider_name(obj)}:webhook"
    expected = _expected(session, link, installment_id)
    reasons = review.mismatches(
        expected, amount_minor=amount_minor, currency=currency, debtor_id=debtor_id
    )
    outcome = record_payment(
        session,
        debtor_id=debtor_id,
        amount_minor=amount_minor,
        currency=currency,
        method="card",
        provider=_provider_name(obj),
        provider_ref=provider_ref,
        payment_link=link,
        installment_id=installment_id,
        recorded_by=actor,
        hold=Hold(expected, reasons) if reasons else None,
    )
    # A retried event finds the payment stored by the first one: held or not, as it was.
    return outcome, outcome.held or review.is_held(session, outcome.payment)


def _outcome(outcome: PaymentOutcome, held: bool) -> str:
    if not outcome.created:
        return "already_recorded"
    return "held_for_review" if held else "recorded"


def on_checkout_completed(session: Session, obj: dict[str, Any], provider: PaymentProvider) -> str:
    if obj.get("payment_status") not in ("paid", "no_payment_required"):
        return "awaiting_payment"  # async methods: checkout.session.async_payment_succeeded follows
    link = _link(session, obj)
    if link is None:
        return "unknown_link"
    amount = minor_units(obj, "amount_total") or 0
    if amount == 0:
        return "nothing_paid"  # we never ask for 0: the link stays open
    intent_id = obj.get("payment_intent")
    if isinstance(intent_id, dict):
        intent_id = intent_id.get("id")
    outcome, held = _record(
        session,
        obj,
        debtor_id=_metadata_debtor(obj) or link.debtor_id,
        amount_minor=amount,
        currency=currency_of(obj),
        provider_ref=str(intent_id or obj.get("id")),
        link=link,
        installment_id=link.installment_id,
    )
    if held:
        return _outcome(outcome, held)  # the link stays open until it is really paid
    if link.paid_at is None:
        link.paid_at = outcome.payment.received_at
    if link.installment_id and obj.get("customer") and intent_id:
        _save_card(session, link, str(intent_id), provider)
    return _outcome(outcome, held)


def _save_card(
    session: Session, link: PaymentLink, intent_id: str, provider: PaymentProvider
) -> None:
    """Keep the card the debtor agreed to save on a plan's payment, for later installments."""
    try:
        refs = provider.saved_card(intent_id)
    except ProviderError:
        log.warning("could not read the saved card of %s", intent_id, exc_info=True)
        return
    if refs is None:
        return
    customer_ref, method_ref = refs
    known = (
        session.query(SavedPaymentMethod)
        .filter_by(provider=provider.name, payment_method_ref=method_ref)
        .first()
    )
    if known is not None:
        return
    installment = session.get(Installment, link.installment_id) if link.installment_id else None
    saved = SavedPaymentMethod(
        debtor_id=link.debtor_id,
        plan_id=installment.plan_id if installment else None,
        provider=provider.name,
        customer_ref=customer_ref,
        payment_method_ref=method_ref,
    )
    session.add(saved)
    session.flush()
    audit.record(
        session,
        actor=f"{provider.name}:webhook",
        action="card.saved",
        entity=saved,
        debtor_id=link.debtor_id,
        plan_id=saved.plan_id,
    )


def _charge(session: Session, obj: dict[str, Any]) -> InstallmentCharge | None:
    """The worker's installment charge this PaymentIntent is, when it names one and matches."""
    metadata = _metadata(obj)
    key = metadata.get("relance_charge_key")
    if isinstance(key, str) and key:
        charge = session.scalar(
            select(InstallmentCharge).where(InstallmentCharge.idempotency_key == key[:128])
        )
    else:  # a debit made before the key was sent names the row
        charge_id = _row_id(metadata.get("relance_charge_id"))
        charge = session.get(InstallmentCharge, charge_id) if charge_id is not None else None
    if charge is None or charge.provider_ref != obj.get("id"):
        return None
    return charge


def on_intent_succeeded(session: Session, obj: dict[str, Any], provider: PaymentProvider) -> str:
    debtor_id = _metadata_debtor(obj)
    if debtor_id is None or session.get(Debtor, debtor_id) is None:
        return "not_ours"
    amount = minor_units(obj, "amount_received", "amount") or 0
    if amount == 0:
        return "nothing_paid"
    charge = _charge(session, obj)
    if (
        charge is not None
        and charge.status not in charges.FINAL
        and (amount, currency_of(obj), debtor_id)
        == (charge.amount_minor, charge.currency, charge.debtor_id)
    ):
        created = find_payment(session, str(obj["id"])) is None
        charges.settled(
            session,
            charge,
            amount_minor=amount,
            currency=currency_of(obj),
            actor=f"{_provider_name(obj)}:webhook",
        )
        return "recorded" if created else "already_recorded"
    installment_id = _metadata(obj).get("relance_installment_id", "")
    outcome, held = _record(
        session,
        obj,
        debtor_id=debtor_id,
        amount_minor=amount,
        currency=currency_of(obj),
        provider_ref=str(obj["id"]),
        link=_link(session, obj),
        installment_id=_row_id(installment_id),
    )
    return _outcome(outcome, held)


def on_intent_failed(session: Session, obj: dict[str, Any], provider: PaymentProvider) -> str:
    """A declined attempt changes no balance; it is kept as evidence. The link stays usable."""
    metadata = _metadata(obj)
    debtor_id = metadata.get("relance_debtor_id", "")
    debtor = session.get(Debtor, _row_id(debtor_id)) if _row_id(debtor_id) is not None else None
    if debtor is None:
        return "not_ours"
    # A card's `last_payment_error` has the generic `code` (card_declined) and the issuer's
    # reason in `decline_code`; a SEPA return only a `code`.
    error = obj.get("last_payment_error") or {}
    code, decline_code = (_text(error.get(key)) for key in ("code", "decline_code"))
    charge = _charge(session, obj)
    if charge is not None:
        handled = charges.failed(
            session,
            charge,
            code=code,
            decline_code=decline_code,
            message=error.get("message"),
            actor=f"{_provider_name(obj)}:webhook",
        )
        return "charge_failed" if handled else "already_failed"
    audit.record(
        session,
        actor=f"{_provider_name(obj)}:webhook",
        action="payment.failed",
        debtor_id=debtor.id,
        provider_ref=obj.get("id"),
        amount_minor=obj.get("amount"),
        currency=obj.get("currency"),
        code=charges.failure_code(code, decline_code),
        decline_code=decline_code,
        kind=metadata.get("relance_kind"),
        payment_link_id=metadata.get("relance_link_id"),
    )
    return "failure_noted"


def on_setup_succeeded(session: Session, obj: dict[str, Any], provider: PaymentProvider) -> str:
    """The debtor gave the mandate or the card on the provider's page: the pending row becomes
    active, with what the debtor may see of it (the mandate reference, the last four)."""
    mandate_id = _row_id(_metadata(obj).get("relance_mandate_id"))
    saved = session.get(SavedPaymentMethod, mandate_id) if mandate_id is not None else None
    if saved is None or saved.kind not in mandates.KINDS or saved.provider != provider.name:
        return "not_ours"
    if saved.debtor_id != _metadata_debtor(obj):
        return "not_ours"
    method_ref, mandate_ref = _ref(obj, "payment_method"), _ref(obj, "mandate")
    if method_ref is None:
        return "not_ours"  # validated before: unreachable
    if saved.kind == mandates.SEPA and mandate_ref is None:
        log.warning("setup intent %s completes mandate %s but has no mandate", obj["id"], saved.id)
        return "mandate_missing"
    try:
        if saved.kind == mandates.SEPA and mandate_ref is not None:
            details = provider.sepa_details(method_ref, mandate_ref)
            reference, last4 = details.mandate_reference, details.last4
        else:
            reference, last4 = None, provider.card_last4(method_ref)
    except ProviderError as exc:
        # A 5xx makes Stripe deliver the event again later, when the lookup may work.
        raise Unavailable(
            "provider_unavailable", "payment method details cannot be read now"
        ) from exc
    activated = mandates.activate(
        session,
        saved,
        customer_ref=_ref(obj, "customer") or "",
        payment_method_ref=method_ref,
        mandate_ref=mandate_ref if saved.kind == mandates.SEPA else None,
        mandate_reference=reference,
        last4=last4,
        actor=f"{provider.name}:webhook",
    )
    kind = "mandate" if saved.kind == mandates.SEPA else "card"
    return f"{kind}_active" if activated else f"{kind}_not_pending"


def on_mandate_updated(session: Session, obj: dict[str, Any], provider: PaymentProvider) -> str:
    """Revoked at the bank or closed account: Stripe marks the mandate `inactive`; stop."""
    saved = (
        session.query(SavedPaymentMethod)
        .filter_by(provider=provider.name, mandate_ref=obj["id"])
        .first()
    )
    if saved is None:
        return "not_ours"
    if obj["status"] != "inactive":
        return "unchanged"
    stopped = mandates.deactivate(
        session, saved, status=mandates.INACTIVE, actor=f"{provider.name}:webhook"
    )
    return "mandate_inactive" if stopped else "already_stopped"


def _disputed(session: Session, obj: dict[str, Any]) -> tuple[Payment, chargebacks.ChargeDispute]:
    """The payment a (validated) dispute is about, or a 4xx that rolls the claim back."""
    payment = find_payment(session, _ref(obj, "payment_intent") or "")
    if payment is None:
        raise NotFound("unknown_payment", "the disputed payment is not one Relance recorded")
    amount = minor_units(obj, "amount") or 0
    if currency_of(obj) != payment.currency or amount > payment.amount_minor:
        raise MalformedEvent("the dispute's amount or currency does not match the payment's")
    return payment, chargebacks.ChargeDispute(
        ref=str(obj["id"]),
        status=str(obj["status"]),
        reason=str(obj["reason"]),
        amount_minor=amount,
    )


def on_dispute_created(session: Session, obj: dict[str, Any], provider: PaymentProvider) -> str:
    payment, dispute = _disputed(session, obj)
    return chargebacks.opened(session, payment, dispute, actor=f"{_provider_name(obj)}:webhook")


def on_dispute_updated(session: Session, obj: dict[str, Any], provider: PaymentProvider) -> str:
    payment, dispute = _disputed(session, obj)
    return chargebacks.updated(session, payment, dispute, actor=f"{_provider_name(obj)}:webhook")


def on_dispute_closed(session: Session, obj: dict[str, Any], provider: PaymentProvider) -> str:
    payment, dispute = _disputed(session, obj)
    return chargebacks.closed(session, payment, dispute, actor=f"{_provider_name(obj)}:webhook")


def _refund(obj: dict[str, Any]) -> refunds.Refund:
    return refunds.Refund(
        ref=str(obj["id"]),
        status=str(obj["status"]),
        reason=_text(obj.get("reason")),
        amount_minor=minor_units(obj, "amount") or 0,
        currency=currency_of(obj),
    )


def on_refund(session: Session, obj: dict[str, Any], provider: PaymentProvider) -> str:
    """A refund made from Stripe (`refund.created`, `refund.updated`), found by its
    PaymentIntent. A refund of no payment of ours is kept for review and answered 2xx; one in
    another currency or for more than the payment is a 4xx and nothing is stored."""
    refund = _refund(obj)
    actor = f"{_provider_name(obj)}:webhook"
    intent = _ref(obj, "payment_intent")
    payment = find_payment(session, intent) if intent else None
    if payment is None:
        return refunds.unmatched(session, refund, payment_ref=intent, actor=actor)
    if refund.currency != payment.currency or refund.amount_minor > payment.amount_minor:
        raise MalformedEvent("the refund's amount or currency does not match the payment's")
    return refunds.refunded(session, payment, refund, actor=actor)


def on_charge_refunded(session: Session, obj: dict[str, Any], provider: PaymentProvider) -> str:
    """`charge.refunded`: each refund the charge lists, as `refund.created` would carry it. A
    charge that lists none (Stripe's default since API version 2022-11-15) moves nothing here:
    its refunds arrive, with their ids, as `refund.created` / `refund.updated`, which the
    endpoint must be subscribed to (docs/architecture.md)."""
    listed = _listed_refunds(obj)
    if not listed:
        return "refunds_in_refund_events"
    outcomes = [
        on_refund(session, {"payment_intent": obj.get("payment_intent"), **item}, provider)
        for item in listed
    ]
    return ",".join(dict.fromkeys(outcomes))


Handler = Callable[[Session, dict[str, Any], PaymentProvider], str]
# Event type -> (validation of data.object, raising MalformedEvent; handler).
HANDLERS: dict[str, tuple[Callable[[dict[str, Any]], None], Handler]] = {
    "checkout.session.completed": (_validate_checkout, on_checkout_completed),
    "checkout.session.async_payment_succeeded": (_validate_checkout, on_checkout_completed),
    "payment_intent.succeeded": (_validate_intent_succeeded, on_intent_succeeded),
    "payment_intent.payment_failed": (_validate_intent_failed, on_intent_failed),
    "setup_intent.succeeded": (_validate_setup_succeeded, on_setup_succeeded),
    "mandate.updated": (_validate_mandate, on_mandate_updated),
    "charge.dispute.created": (_validate_dispute, on_dispute_created),
    "charge.dispute.updated": (_validate_dispute, on_dispute_updated),
    "charge.dispute.closed": (_validate_dispute, on_dispute_closed),
    "refund.created": (_validate_refund, on_refund),
    "refund.updated": (_validate_refund, on_refund),
    "charge.refunded": (_validate_charge_refunded, on_charge_refunded),
}
