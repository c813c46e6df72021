"""Stripe Checkout Sessions (hosted page) and off-session PaymentIntents for saved cards.

The client is built per provider with `base_addresses`, so tests point it at a local fake or
localstripe through the `STRIPE_API_BASE` setting, never at the internet.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import stripe
from stripe.params import PaymentIntentCreateParams
from stripe.params.checkout import SessionCreateParams, SessionCreateParamsPaymentIntentData

from payment_links.providers.base import (
    CheckoutRequest,
    CheckoutSession,
    CheckoutStatus,
    ProviderError,
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
        try:
            session = self._client.v1.checkout.sessions.create(params=params)
        except stripe.StripeError as exc:
            raise ProviderError(f"stripe checkout creation failed: {exc}") from exc
        if not session.url:
            raise ProviderError("stripe returned a checkout session without a URL")
        return CheckoutSession(id=session.id, url=session.url)

    def checkout_status(self, session_id: str) -> CheckoutStatus:
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
        try:
            intent = self._client.v1.payment_intents.create(
                params=params,
                options={"idempotency_key": idempotency_key},
            )
        except stripe.CardError as exc:
            error = exc.error
            intent_id = None
            failed_intent = getattr(error, "payment_intent", None) if error is not None else None
            if failed_intent is not None:
                intent_id = getattr(failed_intent, "id", None)
            return ChargeResult(
                succeeded=False,
                provider_ref=intent_id,
                amount_minor=amount_minor,
                currency=currency.upper(),
                error_code=exc.code or "card_declined",
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
