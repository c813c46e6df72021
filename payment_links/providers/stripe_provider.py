"""Stripe Checkout Sessions (hosted page), off-session PaymentIntents for saved cards, and SEPA
Direct Debit: a Checkout Session in setup mode limited to `sepa_debit` (API 2026-10-28 names
the request parameter `allowed_payment_method_types`; objects still report
`payment_method_types`), which
creates the SetupIntent and shows Stripe's mandate page, where the IBAN is typed and checked),
then off-session debits with the mandate, which answer `processing`. A card kept on file for a
plan outside the euro zone is set up the same way, the session limited to `card`.

The client is built per provider with `base_addresses`, so tests point it at a local fake or
localstripe through the `STRIPE_API_BASE` setting, never at the internet.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from sqlalchemy.orm import Session
from stripe.params import PaymentIntentCreateParams
from stripe.params.checkout import SessionCreateParams, SessionCreateParamsPaymentIntentData

from payment_links.providers.base import (
    CheckoutRequest,
    CheckoutSession,
    CheckoutStatus,
    MandateRequest,
    ProviderError,
    SepaDetails,
)
from relance.ledger.ports import ChargeResult
from relance.settings import Settings

# Stripe accepts a Checkout Session expiry between 30 minutes and 24 hours from now.
MIN_SESSION_LIFETIME = timedelta(minutes=31)
MAX_SESSION_LIFETIME = timedelta(hours=23, minutes=55)


class StripeProvider:
    name = "stripe"

    def __init__(self, settings: Settings) -> None:
        self._client = stripe.StripeClient(
            settings.stripe_api_key,
            base_addresses={"api": settings.stripe_api_base},
            max_network_retries=2,
        )

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        now = datetime.now(UTC)
        expires_at = min(
            max(request.expires_at, now + MIN_SESSION_LIFETIME), now + MAX_SESSION_LIFETIME
        )
        intent_data: SessionCreateParamsPaymentIntentData = {"metadata": request.metadata}
        params: SessionCreateParams = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.currency.lower(),
                        "unit_amount": request.amount_minor,
                        "product_data": {"name": request.description},
                    },
                }
            ],
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "client_reference_id": f"link-{request.link_id}",
            "metadata": request.metadata,
            "expires_at": int(expires_at.timestamp()),
            "locale": request.locale,
            "payment_intent_data": intent_data,
        }
        if request.save_card:
            intent_data["setup_future_usage"] = "off_session"
            params["customer_creation"] = "always"
        if request.customer_email:
            params["customer_email"] = request.customer_email
        return self._open_session(params, "checkout")

    def _open_session(self, params: Any, purpose: str) -> CheckoutSession:
        """Create a hosted Checkout Session (payment or SEPA set-up): one error path for both."""
        try:
            session = self._client.v1.checkout.sessions.create(params=params)
        except stripe.StripeError as exc:
            raise ProviderError(f"stripe {purpose} creation failed: {exc}") from exc
        if not session.url:
            raise ProviderError(f"stripe returned a {purpose} session without a URL")
        return CheckoutSession(id=session.id, url=session.url)

    def checkout_status(self, session_id: str, request: CheckoutRequest) -> CheckoutStatus:
        try:
            session = self._client.v1.checkout.sessions.retrieve(session_id)
        except stripe.StripeError as exc:
            raise ProviderError(f"stripe checkout lookup failed: {exc}") from exc
        return CheckoutStatus(state=str(session.status), url=session.url)

    def saved_card(self, payment_intent_id: str) -> tuple[str, str] | None:
        try:
            intent = self._client.v1.payment_intents.retrieve(payment_intent_id)
        except stripe.StripeError as exc:
            raise ProviderError(f"stripe payment intent lookup failed: {exc}") from exc
        customer = getattr(intent, "customer", None)
        method = getattr(intent, "payment_method", None)
        if isinstance(customer, str) and isinstance(method, str):
            return customer, method
        return None

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
        params: PaymentIntentCreateParams = {
            "amount": amount_minor,
            "currency": currency.lower(),
            "customer": customer_ref,
            "payment_method": payment_method_ref,
            "off_session": True,
            "confirm": True,
            "metadata": metadata,
        }
        if kind == "sepa_debit":
            params["allowed_payment_method_types"] = ["sepa_debit"]
            if mandate_ref:
                params["mandate"] = mandate_ref
        try:
            intent = self._client.v1.payment_intents.create(
                params=params,
                options={"idempotency_key": idempotency_key},
            )
        except stripe.CardError as exc:
            # Stripe's card_error: the generic `code` (card_declined), the issuer's reason in
            # `decline_code` when it gave one, and the failed PaymentIntent.
            error = exc.error
            failed_intent = getattr(error, "payment_intent", None)
            decline_code = getattr(error, "decline_code", None)
            return ChargeResult(
                succeeded=False,
                provider_ref=getattr(failed_intent, "id", None),
                amount_minor=amount_minor,
                currency=currency.upper(),
                error_code=exc.code or "card_declined",
                decline_code=decline_code if isinstance(decline_code, str) else None,
                error_message=exc.user_message or str(exc),
            )
        except stripe.StripeError as exc:
            return ChargeResult(
                succeeded=False,
                amount_minor=amount_minor,
                currency=currency.upper(),
                error_code="provider_error",
                error_message=str(exc),
            )
        if intent.status == "processing":
            # A SEPA debit: payment_intent.succeeded or payment_failed follows, days later.
            return ChargeResult(
                succeeded=False,
                pending=True,
                provider_ref=intent.id,
                amount_minor=amount_minor,
                currency=currency.upper(),
            )
        if intent.status != "succeeded":
            # requires_action (3-D Secure) cannot be completed without the debtor: send a link.
            return ChargeResult(
                succeeded=False,
                provider_ref=intent.id,
                amount_minor=amount_minor,
                currency=currency.upper(),
                error_code=intent.status,
            )
        return ChargeResult(
            succeeded=True,
            provider_ref=intent.id,
            amount_minor=int(getattr(intent, "amount_received", None) or intent.amount),
            currency=intent.currency.upper(),
        )

    def create_mandate_setup(self, request: MandateRequest) -> CheckoutSession:
        """A Checkout Session in setup mode, limited to the one method: `sepa_debit` (Stripe's
        page shows the mandate and checks the IBAN) or `card` (the SetupIntent is made for
        off-session use, Checkout's default in setup mode)."""
        if request.kind not in ("sepa_debit", "card"):
            raise ProviderError(f"no set-up page for {request.kind!r}")
        params: SessionCreateParams = {
            "mode": "setup",
            "allowed_payment_method_types": [request.kind],
            "customer_creation": "always",
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "client_reference_id": f"mandate-{request.saved_method_id}",
            "metadata": request.metadata,
            "locale": request.locale,
            "setup_intent_data": {"metadata": request.metadata},
        }
        if request.customer_email:
            params["customer_email"] = request.customer_email
        return self._open_session(params, "mandate set-up")

    def sepa_details(self, payment_method_ref: str, mandate_ref: str) -> SepaDetails:
        try:
            mandate = self._client.v1.mandates.retrieve(mandate_ref)
            method = self._client.v1.payment_methods.retrieve(payment_method_ref)
        except stripe.StripeError as exc:
            raise ProviderError(f"stripe mandate lookup failed: {exc}") from exc
        details = mandate.payment_method_details
        sepa = getattr(details, "sepa_debit", None)
        reference = getattr(sepa, "reference", None)
        last4 = getattr(getattr(method, "sepa_debit", None), "last4", None)
        if not isinstance(reference, str) or not isinstance(last4, str):
            raise ProviderError(f"mandate {mandate_ref} is not a SEPA Direct Debit mandate")
        return SepaDetails(mandate_reference=reference, last4=last4)

    def card_last4(self, payment_method_ref: str) -> str:
        try:
            method = self._client.v1.payment_methods.retrieve(payment_method_ref)
        except stripe.StripeError as exc:
            raise ProviderError(f"stripe payment method lookup failed: {exc}") from exc
        last4 = getattr(getattr(method, "card", None), "last4", None)
        if not isinstance(last4, str):
            raise ProviderError(f"payment method {payment_method_ref} is not a card")
        return last4

    def detach(self, payment_method_ref: str) -> None:
        try:
            self._client.v1.payment_methods.detach(payment_method_ref)
        except stripe.StripeError as exc:
            raise ProviderError(f"stripe payment method detach failed: {exc}") from exc

    def due_events(self, session: Session, now: datetime) -> list[dict[str, Any]]:
        return []  # Stripe pushes every event to the webhook
