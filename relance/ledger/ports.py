"""What the core needs from the payments edge (payment_links/), as a protocol.

`relance` must not import payment_links/ (arrows point inward), yet follow-ups send payment links
and charge saved cards. The process assembly installs the implementation
(`payment_links.wiring.install()`); tests install a fake or the real one explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from relance.db.models import Debtor, Installment, PaymentLink
from relance.ledger.models import SavedPaymentMethod


@dataclass(frozen=True)
class ChargeResult:
    """Outcome of an off-session charge. `provider_ref` is the PaymentIntent id when one exists."""

    succeeded: bool
    provider_ref: str | None = None
    amount_minor: int = 0
    currency: str = "EUR"
    error_code: str | None = None
    error_message: str | None = None


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

    def charge_saved_card(
        self, session: Session, *, saved: SavedPaymentMethod, installment: Installment
    ) -> ChargeResult:
        """Charge one installment on the card kept on file, without the debtor present."""
        ...


_payments: PaymentsPort | None = None


def install_payments(port: PaymentsPort | None) -> None:
    global _payments
    _payments = port


def get_payments() -> PaymentsPort:
    if _payments is None:
        raise RuntimeError("no payments port installed: call payment_links.wiring.install()")
    return _payments
