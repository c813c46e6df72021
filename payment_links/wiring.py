"""Plug the payments edge into the core's `PaymentsPort` (follow-ups send links, charge cards).

Called once at process start-up by the assembly (`relance.wiring.wire()`), or by tests.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from payment_links import service
from payment_links.providers import PaymentProvider, get_provider
from relance.db.models import Debtor, Installment, PaymentLink
from relance.ledger.models import SavedPaymentMethod
from relance.ledger.ports import ChargeResult, install_payments
from relance.settings import get_settings


class PaymentLinksAdapter:
    """`relance.ledger.ports.PaymentsPort` backed by payment_links and the configured provider."""

    def __init__(self, provider: PaymentProvider | None = None) -> None:
        self._provider = provider

    @property
    def provider(self) -> PaymentProvider:
        return self._provider or get_provider(get_settings())

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
        return service.create_link(
            session,
            debtor=debtor,
            purpose=purpose,
            amount_minor=amount_minor,
            invoice_ids=invoice_ids,
            installment=installment,
        )

    def charge_saved_card(
        self, session: Session, *, saved: SavedPaymentMethod, installment: Installment
    ) -> ChargeResult:
        provider = self.provider
        if saved.provider != provider.name:
            return ChargeResult(
                succeeded=False,
                error_code="provider_mismatch",
                error_message=f"card saved with {saved.provider}, provider is {provider.name}",
            )
        metadata = {
            "relance_kind": "off_session",
            "relance_provider": provider.name,
            "relance_debtor_id": str(saved.debtor_id),
            "relance_installment_id": str(installment.id),
        }
        return provider.charge_off_session(
            customer_ref=saved.customer_ref,
            payment_method_ref=saved.payment_method_ref,
            amount_minor=installment.amount_minor - installment.paid_minor,
            currency=installment.plan.currency,
            metadata=metadata,
            # One charge per installment and amount: a retried run cannot charge twice.
            idempotency_key=f"relance-installment-{installment.id}-{installment.paid_minor}",
        )


def install(provider: PaymentProvider | None = None) -> None:
    install_payments(PaymentLinksAdapter(provider))
