"""The local sandbox provider: a checkout page on our own server with "pay" and "decline" buttons.

Used when no Stripe key is configured, so a fresh install (and the demo) pays end to end. The
page's buttons produce Stripe-shaped events signed with the webhook secret and fed to the same
webhook handler and ledger as real Stripe events; nothing here touches the ledger directly.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

from payment_links.providers.base import CheckoutRequest, CheckoutSession, CheckoutStatus
from payment_links.service import link_metadata
from relance.db.models import PaymentLink
from relance.ledger.ports import ChargeResult
from relance.settings import Settings

SESSION_PREFIX = "cs_sandbox_"
DECLINING_METHOD = "pm_sandbox_decline"


class SandboxProvider:
    name = "sandbox"

    def __init__(self, settings: Settings) -> None:
        self._base = settings.public_base_url.rstrip("/")

    def _url(self, session_id: str) -> str:
        return f"{self._base}/pay/sandbox/{session_id}"

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        session_id = SESSION_PREFIX + secrets.token_urlsafe(24)
        return CheckoutSession(id=session_id, url=self._url(session_id))

    def checkout_status(self, session_id: str) -> CheckoutStatus:
        # A sandbox session lives as long as its link: the link's own state says if it was paid.
        return CheckoutStatus(state="open", url=self._url(session_id))

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
    ) -> ChargeResult:
        ref = "pi_sandbox_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
        if payment_method_ref == DECLINING_METHOD:
            return ChargeResult(
                succeeded=False,
                provider_ref=ref,
                amount_minor=amount_minor,
                currency=currency.upper(),
                error_code="card_declined",
            )
        return ChargeResult(
            succeeded=True, provider_ref=ref, amount_minor=amount_minor, currency=currency.upper()
        )


def intent_id_for(session_id: str) -> str:
    """One PaymentIntent id per sandbox session: paying twice records one payment."""
    return "pi_sandbox_" + session_id.removeprefix(SESSION_PREFIX)


def signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """Stripe-Signature for `payload`, computed as Stripe documents it (t=..., v1=HMAC-SHA256)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def sandbox_events(link: PaymentLink, session_id: str, outcome: str) -> list[dict[str, Any]]:
    """Stripe-shaped events for a sandbox checkout: what Stripe would send for the same outcome."""
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
        intent["last_payment_error"] = {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "generic_decline",
        }
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
