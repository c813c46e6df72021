"""Payment providers behind one interface: Stripe Checkout, or the local sandbox (no key set)."""

from __future__ import annotations

from payment_links.providers.base import (
    CheckoutRequest,
    CheckoutSession,
    CheckoutStatus,
    MandateRequest,
    PaymentProvider,
    ProviderError,
    SepaDetails,
)
from relance.settings import Settings

__all__ = [
    "CheckoutRequest",
    "CheckoutSession",
    "CheckoutStatus",
    "MandateRequest",
    "PaymentProvider",
    "ProviderError",
    "SepaDetails",
    "get_provider",
]


def get_provider(settings: Settings) -> PaymentProvider:
    """Stripe when a key is configured, the sandbox otherwise (so a fresh install demos payment)."""
    if settings.uses_stripe:
        from payment_links.providers.stripe_provider import StripeProvider

        return StripeProvider(settings)
    from payment_links.providers.sandbox import SandboxProvider

    return SandboxProvider(settings)
