"""The local sandbox provider: a checkout page on our own server where a Stripe test card pays or
is declined as Stripe declines it (`sandbox_cards.py`), with "pay" and "decline" shortcuts.

Used when no Stripe key is configured, so a fresh install (and the demo) pays end to end. The
page's buttons produce Stripe-shaped events signed with the webhook secret and fed to the same
webhook handler and ledger as real Stripe events; nothing here touches the ledger directly. As
Stripe Checkout does, a paid checkout sends the debtor to the checkout's success URL, a declined
card stays on the page to try again, and a link leads back to the cancel URL.

SEPA Direct Debit too: a local mandate page (IBAN checked with schwifty, never stored: the
payment method id only carries the simulated outcome and the last four characters), then
debits that answer `processing` and settle at the next follow-up pass through `due_events`:
`ok` succeeds, `fail` is refused at once (insufficient funds), `late` succeeds and is returned
`LATE_FAILURE_DAYS` later (account closed, and the mandate goes inactive), as SEPA debits can.

A card kept on file for a plan outside the euro zone: a local page where one of Stripe's test
card numbers is typed (checked by the Luhn sum, never stored: the payment method id carries the
simulated outcome and the last four digits); its off-session charges then succeed at once, or
are declined as its test card declines (`sandbox_cards.TEST_CARDS`: insufficient funds, lost,
expired...; 4000 0000 0000 0341, Stripe's card that attaches but declines, a generic decline).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from payment_links.providers.base import (
    CheckoutRequest,
    CheckoutSession,
    CheckoutStatus,
    MandateRequest,
    SepaDetails,
)
from payment_links.providers.sandbox_cards import PAYING, SandboxCard, card_by_key, card_for
from payment_links.service import charge_metadata, link_metadata, mandate_metadata
from relance.db.models import PaymentLink
from relance.ledger.models import InstallmentCharge, SavedPaymentMethod
from relance.ledger.ports import ChargeResult
from relance.settings import Settings

SESSION_PREFIX = "cs_sandbox_"
SETUP_PREFIX = "seti_sandbox_"
DECLINING_METHOD = "pm_sandbox_decline"
SEPA_METHOD_PREFIX = "pm_sandbox_sepa_"
SEPA_OUTCOMES = ("ok", "fail", "late")
LATE_FAILURE_DAYS = 3
CARD_METHOD_PREFIX = "pm_sandbox_card_"


class SandboxProvider:
    name = "sandbox"

    def __init__(self, settings: Settings) -> None:
        self._base = settings.public_base_url.rstrip("/")

    def _url(self, session_id: str, request: CheckoutRequest) -> str:
        """The checkout page, carrying where to go once paid or cancelled: Stripe keeps the
        success and cancel URLs with its session; the sandbox keeps nothing (they hold the
        link's token, which the database never stores), so its page's address carries them."""
        back = urlencode({"success": request.success_url, "cancel": request.cancel_url})
        return f"{self._base}/pay/sandbox/{session_id}?{back}"

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        session_id = SESSION_PREFIX + secrets.token_urlsafe(24)
        return CheckoutSession(id=session_id, url=self._url(session_id, request))

    def checkout_status(self, session_id: str, request: CheckoutRequest) -> CheckoutStatus:
        # A sandbox session lives as long as its link: the link's own state says if it was paid.
        return CheckoutStatus(state="open", url=self._url(session_id, request))

    def saved_card(self, payment_intent_id: str) -> tuple[str, str] | None:
        suffix = payment_intent_id.removeprefix(intent_id_for(""))
        return f"cus_sandbox_{suffix}", f"pm_sandbox_{suffix}"

    def charge_off_session(
        self,
        *,
        customer_ref: str,
        payment_method_ref: str,
        amount_minor: int,
        currency: str,
        metadata: dict[str, str],
        idempotency_key: str,
        kind: str = "card",
        mandate_ref: str | None = None,
    ) -> ChargeResult:
        # Same key, same PaymentIntent id: a retried charge is the same charge, as with Stripe.
        ref = "pi_sandbox_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
        if kind == "sepa_debit":
            if sepa_outcome(payment_method_ref) == "fail":
                return ChargeResult(
                    succeeded=False,
                    provider_ref=ref,
                    amount_minor=amount_minor,
                    currency=currency.upper(),
                    error_code="insufficient_funds",
                )
            return ChargeResult(
                succeeded=False,
                pending=True,
                provider_ref=ref,
                amount_minor=amount_minor,
                currency=currency.upper(),
            )
        if payment_method_ref == DECLINING_METHOD:
            return ChargeResult(
                succeeded=False,
                provider_ref=ref,
                amount_minor=amount_minor,
                currency=currency.upper(),
                error_code="card_declined",
            )
        card = card_by_key(card_outcome(payment_method_ref))
        if card is not None and card.declines:
            # What Stripe's card error says for this test card: its code, the issuer's reason.
            return ChargeResult(
                succeeded=False,
                provider_ref=ref,
                amount_minor=amount_minor,
                currency=currency.upper(),
                error_code=card.code,
                decline_code=card.decline_code,
            )
        return ChargeResult(
            succeeded=True, provider_ref=ref, amount_minor=amount_minor, currency=currency.upper()
        )

    def create_mandate_setup(self, request: MandateRequest) -> CheckoutSession:
        setup_id = SETUP_PREFIX + secrets.token_urlsafe(24)
        back = urlencode({"return": request.success_url, "cancel": request.cancel_url})
        page = "card-setup" if request.kind == "card" else "mandate"
        return CheckoutSession(
            id=setup_id, url=f"{self._base}/pay/sandbox/{page}/{setup_id}?{back}"
        )

    def card_last4(self, payment_method_ref: str) -> str:
        return payment_method_ref.removeprefix(CARD_METHOD_PREFIX).split("_")[1]

    def sepa_details(self, payment_method_ref: str, mandate_ref: str) -> SepaDetails:
        last4 = payment_method_ref.removeprefix(SEPA_METHOD_PREFIX).split("_")[1]
        reference = "SBX-" + mandate_ref.removeprefix("mandate_sandbox_")[:10].upper()
        return SepaDetails(mandate_reference=reference, last4=last4)

    def detach(self, payment_method_ref: str) -> None:
        return None  # nothing is kept on our side of the sandbox but the references

    def due_events(self, session: Session, now: datetime) -> list[dict[str, Any]]:
        """Outcomes of simulated debits, each event once (a fixed id per charge and outcome)."""
        rows = session.execute(
            select(InstallmentCharge, SavedPaymentMethod)
            .join(SavedPaymentMethod, SavedPaymentMethod.id == InstallmentCharge.saved_method_id)
            .where(
                InstallmentCharge.provider == self.name,
                InstallmentCharge.kind == "sepa_debit",
                InstallmentCharge.status.in_(("processing", "succeeded")),
                InstallmentCharge.provider_ref.is_not(None),
            )
            .order_by(InstallmentCharge.id)
        ).all()
        events: list[dict[str, Any]] = []
        stamp = int(now.timestamp())
        for charge, saved in rows:
            outcome = sepa_outcome(saved.payment_method_ref or "")
            if charge.status == "processing":
                events.append(_debit_event(charge, "succeeded", stamp))
            elif (
                outcome == "late"
                and charge.settled_at is not None
                and charge.settled_at + timedelta(days=LATE_FAILURE_DAYS) <= now
            ):
                events.append(_debit_event(charge, "payment_failed", stamp))
                events.append(_mandate_event(saved, "inactive", stamp))
        return events


def sepa_outcome(payment_method_ref: str) -> str | None:
    """The outcome a sandbox SEPA method simulates (`ok`, `fail`, `late`)."""
    if not payment_method_ref.startswith(SEPA_METHOD_PREFIX):
        return None
    outcome = payment_method_ref.removeprefix(SEPA_METHOD_PREFIX).split("_")[0]
    return outcome if outcome in SEPA_OUTCOMES else None


def sepa_method_ref(outcome: str, last4: str) -> str:
    return f"{SEPA_METHOD_PREFIX}{outcome}_{last4}_{secrets.token_hex(8)}"


def card_outcome(payment_method_ref: str) -> str | None:
    """What a sandbox card kept on file does when charged: `ok`, or the key of the test card
    whose decline it repeats (`sandbox_cards.TEST_CARDS`)."""
    if not payment_method_ref.startswith(CARD_METHOD_PREFIX):
        return None
    return payment_method_ref.removeprefix(CARD_METHOD_PREFIX).split("_")[0]


def card_method_ref(number: str) -> str:
    """The payment method a typed test card becomes: its outcome and last four, nothing more."""
    outcome = card_for(number).key
    return f"{CARD_METHOD_PREFIX}{outcome}_{number[-4:]}_{secrets.token_hex(8)}"


def setup_succeeded_event(
    setup_id: str, saved: SavedPaymentMethod, *, outcome: str = "", last4: str = "", card: str = ""
) -> dict[str, Any]:
    """What Stripe sends once the debtor accepted the mandate (`outcome`, `last4` of the IBAN)
    or gave the card (`card`, its digits): a succeeded SetupIntent; a card's has no mandate."""
    now = int(time.time())
    suffix = setup_id.removeprefix(SETUP_PREFIX)
    intent = {
        "id": "seti_sandbox_" + secrets.token_hex(12),
        "object": "setup_intent",
        "customer": f"cus_sandbox_{suffix[:16]}",
        "livemode": False,
        "mandate": None if card else f"mandate_sandbox_{secrets.token_hex(8)}",
        "metadata": mandate_metadata(saved, SandboxProvider.name),
        "payment_method": card_method_ref(card) if card else sepa_method_ref(outcome, last4),
        "payment_method_types": ["card" if card else "sepa_debit"],
        "status": "succeeded",
        "usage": "off_session",
        "created": now,
    }
    return _event("setup_intent.succeeded", intent, now)


def _debit_event(charge: InstallmentCharge, outcome: str, now: int) -> dict[str, Any]:
    succeeded = outcome == "succeeded"
    intent: dict[str, Any] = {
        "id": charge.provider_ref,
        "object": "payment_intent",
        "amount": charge.amount_minor,
        "amount_received": charge.amount_minor if succeeded else 0,
        "currency": charge.currency.lower(),
        "livemode": False,
        "metadata": charge_metadata(
            SandboxProvider.name,
            debtor_id=charge.debtor_id,
            installment_id=charge.installment_id,
            charge_key=charge.idempotency_key,
            kind=charge.kind,
        ),
        "payment_method_types": ["sepa_debit"],
        "status": "succeeded" if succeeded else "requires_payment_method",
        "created": now,
    }
    if not succeeded:
        intent["last_payment_error"] = {
            "type": "card_error",
            "code": "account_closed",
            "message": "The customer's bank account has been closed.",
        }
    event = _event(f"payment_intent.{outcome}", intent, now)
    event["id"] = f"evt_sandbox_charge_{charge.id}_{outcome}"
    return event


def _mandate_event(saved: SavedPaymentMethod, status: str, now: int) -> dict[str, Any]:
    mandate = {
        "id": saved.mandate_ref,
        "object": "mandate",
        "livemode": False,
        "payment_method": saved.payment_method_ref,
        "status": status,
        "type": "multi_use",
    }
    event = _event("mandate.updated", mandate, now)
    event["id"] = f"evt_sandbox_mandate_{saved.id}_{status}"
    return event


def intent_id_for(session_id: str) -> str:
    """One PaymentIntent id per sandbox session: paying twice records one payment."""
    return "pi_sandbox_" + session_id.removeprefix(SESSION_PREFIX)


def signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """Stripe-Signature for `payload`, computed as Stripe documents it (t=..., v1=HMAC-SHA256)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def sandbox_events(
    link: PaymentLink, session_id: str, card: SandboxCard = PAYING
) -> list[dict[str, Any]]:
    """Stripe-shaped events for a sandbox checkout paid with `card`: what Stripe would send for
    that test card (a declining one: `payment_intent.payment_failed` with its error and decline
    codes in `last_payment_error`, as Stripe sets them)."""
    outcome = "decline" if card.declines else "success"
    now = int(time.time())
    intent_id = intent_id_for(session_id)
    metadata = link_metadata(link, SandboxProvider.name)
    intent: dict[str, Any] = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": link.amount_minor,
        "amount_received": link.amount_minor if outcome == "success" else 0,
        "currency": link.currency.lower(),
        "customer": f"cus_sandbox_{intent_id.removeprefix('pi_sandbox_')}"
        if link.installment_id
        else None,
        "livemode": False,
        "metadata": metadata,
        "status": "succeeded" if outcome == "success" else "requires_payment_method",
        "created": now,
    }
    if outcome != "success":
        error: dict[str, Any] = {"type": "card_error", "code": card.code}
        if card.decline_code:
            error["decline_code"] = card.decline_code
        intent["last_payment_error"] = error
        return [_event("payment_intent.payment_failed", intent, now)]
    checkout = {
        "id": session_id,
        "object": "checkout.session",
        "amount_subtotal": link.amount_minor,
        "amount_total": link.amount_minor,
        "client_reference_id": f"link-{link.id}",
        "currency": link.currency.lower(),
        "customer": intent["customer"],
        "livemode": False,
        "metadata": metadata,
        "mode": "payment",
        "payment_intent": intent_id,
        "payment_status": "paid",
        "status": "complete",
        "created": now,
    }
    # Stripe does not promise an order; the intent event first exercises the out-of-order path.
    return [
        _event("payment_intent.succeeded", intent, now),
        _event("checkout.session.completed", checkout, now),
    ]


def _event(kind: str, obj: dict[str, Any], now: int) -> dict[str, Any]:
    return {
        "id": "evt_sandbox_" + secrets.token_hex(12),
        "object": "event",
        "api_version": "2024-06-20",
        "created": now,
        "livemode": False,
        "pending_webhooks": 1,
        "type": kind,
        "data": {"object": obj},
    }
