"""Plug the payments edge into the core's `PaymentsPort` (follow-ups send links, charge cards and
SEPA mandates; the portal sets mandates up).

Called once at process start-up by the assembly (`relance.wiring.wire()`), or by tests.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.orm import Session

from payment_links import service, webhooks
from payment_links.providers import MandateRequest, PaymentProvider, ProviderError, get_provider
from payment_links.providers.sandbox import signature_header
from payment_links.service import mandate_metadata
from relance.db.models import Debtor, Installment, PaymentLink
from relance.errors import Unavailable
from relance.ledger.models import SavedPaymentMethod
from relance.ledger.ports import ChargeResult, MandateSetup, install_payments
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

    def provider_name(self) -> str:
        return self.provider.name

    def charge_saved_method(
        self,
        session: Session,
        *,
        saved: SavedPaymentMethod,
        installment: Installment,
        amount_minor: int,
        idempotency_key: str,
    ) -> ChargeResult:
        provider = self.provider
        if saved.provider != provider.name:
            return ChargeResult(
                succeeded=False,
                error_code="provider_mismatch",
                error_message=f"method saved with {saved.provider}, provider is {provider.name}",
            )
        if not saved.customer_ref or not saved.payment_method_ref:
            return ChargeResult(
                succeeded=False,
                error_code="method_incomplete",
                error_message=f"saved method {saved.id} has no provider references",
            )
        return provider.charge_off_session(
            customer_ref=saved.customer_ref,
            payment_method_ref=saved.payment_method_ref,
            amount_minor=amount_minor,
            currency=installment.plan.currency,
            metadata=service.charge_metadata(
                provider.name,
                debtor_id=saved.debtor_id,
                installment_id=installment.id,
                charge_key=idempotency_key,
                kind=saved.kind,
            ),
            idempotency_key=idempotency_key,
            kind=saved.kind,
            mandate_ref=saved.mandate_ref,
        )

    def start_mandate(
        self,
        session: Session,
        *,
        saved: SavedPaymentMethod,
        locale: str,
        return_url: str,
        cancel_url: str,
    ) -> MandateSetup:
        provider = self.provider
        debtor = session.get(Debtor, saved.debtor_id)
        request = MandateRequest(
            saved_method_id=saved.id,
            success_url=return_url,
            cancel_url=cancel_url,
            locale=locale,
            metadata=mandate_metadata(saved, provider.name),
            customer_email=debtor.email if debtor is not None else None,
            kind=saved.kind,
        )
        try:
            checkout = provider.create_mandate_setup(request)
        except ProviderError as exc:
            raise Unavailable(
                "provider_unavailable", "the payment provider cannot be reached"
            ) from exc
        return MandateSetup(setup_ref=checkout.id, url=checkout.url)

    def revoke_method(self, session: Session, *, saved: SavedPaymentMethod) -> None:
        if saved.payment_method_ref:
            try:
                self.provider.detach(saved.payment_method_ref)
            except ProviderError as exc:
                # Not stopped at the provider means not stopped: the debtor is asked to retry.
                raise Unavailable(
                    "provider_unavailable", "the payment provider cannot be reached"
                ) from exc

    def deliver_due_events(self, session: Session, now: datetime) -> int:
        """Feed what the provider owes (the sandbox's simulated debit outcomes) through the
        webhook handler, signed like Stripe's, so they take the path real events take."""
        settings = get_settings()
        provider = self.provider
        delivered = 0
        for event in provider.due_events(session, now):
            payload = json.dumps(event).encode()
            body = webhooks.process(
                session,
                payload,
                signature_header(payload, settings.stripe_webhook_secret),
                secret=settings.stripe_webhook_secret,
                provider=provider,
            )
            delivered += 0 if body.get("duplicate") else 1
        return delivered


def install(provider: PaymentProvider | None = None) -> None:
    install_payments(PaymentLinksAdapter(provider))
