"""What the core needs from the payments edge (payment_links/), as a protocol.

`relance` must not import payment_links/ (arrows point inward), yet follow-ups send payment links
and charge saved cards and SEPA mandates, and the portal sets mandates up. The process assembly installs the implementation
(`payment_links.wiring.install()`); tests install a fake or the real one explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from relance.db.models import Debtor, Installment, PaymentLink
from relance.ledger.models import SavedPaymentMethod


@dataclass(frozen=True)
class ChargeResult:
    """Outcome of an off-session charge. `provider_ref` is the PaymentIntent id when one exists.

    `pending`: accepted but not settled (a SEPA debit is `processing` for days); the outcome then
    arrives by webhook (`payment_intent.succeeded` or `payment_intent.payment_failed`).

    A declined card has the provider's error code (Stripe: `card_declined`) and, when the card's
    issuer gave one, its reason in `decline_code` (`insufficient_funds`, `lost_card`...)."""

    succeeded: bool
    provider_ref: str | None = None
    amount_minor: int = 0
    currency: str = "EUR"
    error_code: str | None = None
    error_message: str | None = None
    pending: bool = False
    decline_code: str | None = None


@dataclass(frozen=True)
class MandateSetup:
    """Where to send the debtor to give a SEPA mandate or a card (`url`), and the provider's id
    of that set-up (`setup_ref`), which `setup_intent.succeeded` names once it is active."""

    setup_ref: str
    url: str


class PaymentsPort(Protocol):
    def create_link(
        self,
        session: Session,
        *,
        debtor: Debtor,
        purpose: str,
        amount_minor: int | None = None,
        invoice_ids: list[int] | None = None,
        installment: Installment | None = None,
    ) -> tuple[PaymentLink, str]:
        """A fresh payment link row and its URL (the token is only in the URL)."""
        ...

    def provider_name(self) -> str:
        """The provider new payment methods are saved with."""
        ...

    def charge_saved_method(
        self,
        session: Session,
        *,
        saved: SavedPaymentMethod,
        installment: Installment,
        amount_minor: int,
        idempotency_key: str,
    ) -> ChargeResult:
        """Charge one installment with the card or mandate kept on file, without the debtor."""
        ...

    def start_mandate(
        self,
        session: Session,
        *,
        saved: SavedPaymentMethod,
        locale: str,
        return_url: str,
        cancel_url: str,
    ) -> MandateSetup:
        """Open the provider's page where the debtor gives a SEPA Direct Debit mandate, or a
        card to keep on file (`saved.kind`); back to `return_url` once given, to `cancel_url`
        when the debtor leaves without giving it."""
        ...

    def revoke_method(self, session: Session, *, saved: SavedPaymentMethod) -> None:
        """Tell the provider the method may no longer be charged (Stripe: detach it)."""
        ...

    def deliver_due_events(self, session: Session, now: datetime) -> int:
        """Events the provider owes us now that are not pushed by webhook (only the sandbox has
        any: the outcomes of its simulated SEPA debits); how many were delivered."""
        ...


_payments: PaymentsPort | None = None


def install_payments(port: PaymentsPort | None) -> None:
    global _payments
    _payments = port


def get_payments() -> PaymentsPort:
    if _payments is None:
        raise RuntimeError("no payments port installed: call payment_links.wiring.install()")
    return _payments
