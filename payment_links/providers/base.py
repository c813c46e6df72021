"""The provider interface the payment-link service and the follow-ups use."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from relance.ledger.ports import ChargeResult


class ProviderError(Exception):
    """The provider could not be reached or refused the request (not a card decline).

    A transport failure, not a refusal, so not a RelanceError: the callers decide where they call
    the provider (the checkout endpoint shows a "try again later" page in the debtor's language;
    the webhook handler logs it and does not save the card)."""


@dataclass(frozen=True)
class CheckoutRequest:
    link_id: int
    amount_minor: int
    currency: str
    description: str
    success_url: str
    cancel_url: str
    expires_at: datetime
    locale: str
    metadata: dict[str, str] = field(default_factory=dict)
    save_card: bool = False
    customer_email: str | None = None


@dataclass(frozen=True)
class MandateRequest:
    """A hosted page where the debtor gives a SEPA Direct Debit mandate (`kind` sepa_debit) or
    a card kept for off-session charges (`kind` card); no payment now."""

    saved_method_id: int
    success_url: str
    cancel_url: str
    locale: str
    metadata: dict[str, str] = field(default_factory=dict)
    customer_email: str | None = None
    kind: str = "sepa_debit"


@dataclass(frozen=True)
class SepaDetails:
    """What the debtor may see of an active mandate: its reference and the IBAN's last four."""

    mandate_reference: str
    last4: str


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


@dataclass(frozen=True)
class CheckoutStatus:
    """Where a hosted checkout stands: "open" (url set), "complete" or "expired"."""

    state: str
    url: str | None = None


class PaymentProvider(Protocol):
    name: str

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        """Open a hosted checkout for exactly this amount and currency."""
        ...

    def checkout_status(self, session_id: str, request: CheckoutRequest) -> CheckoutStatus:
        """Whether a checkout can still be paid (and its URL), or was completed, or expired.

        `request` is what the checkout was opened with: Stripe keeps it with the session; the
        sandbox keeps nothing, so the address of its page (which carries the success and cancel
        URLs) is made again from it."""
        ...

    def saved_card(self, payment_intent_id: str) -> tuple[str, str] | None:
        """(customer, payment method) kept by a checkout that saved the card, if any."""
        ...

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
        """Charge a saved card or debit a SEPA mandate without the debtor present; declines come
        back as a result, a SEPA debit as `pending` (its outcome arrives by webhook)."""
        ...

    def create_mandate_setup(self, request: MandateRequest) -> CheckoutSession:
        """Open the page where the debtor types an IBAN and accepts the mandate, or (kind
        `card`) gives the card to keep on file."""
        ...

    def card_last4(self, payment_method_ref: str) -> str:
        """The last four digits of a card kept on file (what the debtor sees of it)."""
        ...

    def sepa_details(self, payment_method_ref: str, mandate_ref: str) -> SepaDetails:
        """The mandate reference and IBAN last four of an active mandate."""
        ...

    def detach(self, payment_method_ref: str) -> None:
        """Make the method unusable at the provider (Stripe: detaching revokes the mandate)."""
        ...

    def due_events(self, session: Session, now: datetime) -> list[dict[str, Any]]:
        """Events owed now and not pushed by webhook: only the sandbox's simulated debits."""
        ...
