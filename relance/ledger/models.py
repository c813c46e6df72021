"""What the debtor agreed to keep on file (a card, a SEPA Direct Debit mandate), the charges made
with it for a plan's installments, and payments waiting for review."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from relance.db.base import Base, MinorUnits, TimestampMixin


class SavedPaymentMethod(TimestampMixin, Base):
    """A way to charge the debtor's installments without them: a card kept by a checkout, or a
    SEPA Direct Debit mandate set up from the portal.

    Provider references only (customer, payment method, mandate ids), never card data or an IBAN
    in clear: for a mandate, the last four characters of the IBAN and the mandate reference and
    text the debtor agreed to. A mandate is `pending` from the moment the debtor is sent to the
    provider's page until `setup_intent.succeeded` makes it `active` (then it has references);
    `revoked` (the debtor, from the portal) and `inactive` (the bank or Stripe, `mandate.updated`)
    stop automatic collection: the installments go back to payment links.
    """

    __tablename__ = "saved_payment_methods"
    __table_args__ = (UniqueConstraint("provider", "payment_method_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    plan_id: Mapped[int | None] = mapped_column(
        ForeignKey("payment_plans.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16), default="card", server_default="card")
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    customer_ref: Mapped[str | None] = mapped_column(String(128))
    payment_method_ref: Mapped[str | None] = mapped_column(String(128))
    setup_ref: Mapped[str | None] = mapped_column(String(128), index=True)
    mandate_ref: Mapped[str | None] = mapped_column(String(128), index=True)
    mandate_reference: Mapped[str | None] = mapped_column(String(64))
    mandate_text: Mapped[str | None] = mapped_column(Text)
    last4: Mapped[str | None] = mapped_column(String(4))
    revoked_at: Mapped[datetime | None]


class InstallmentCharge(TimestampMixin, Base):
    """One attempt to charge an installment with a saved method, claimed before the provider call.

    `idempotency_key` (installment + attempt) goes to the provider: a job that dies after the call
    and runs again makes the same request, which the provider answers with the same PaymentIntent,
    and the payment is recorded once (by its PaymentIntent id). A SEPA debit stays `processing`
    for days; `succeeded` or `failed` arrive by webhook, and a debit can fail after it succeeded
    (the payment is then reversed, `relance/ledger/reversal.py`). A SEPA debit taken back by a
    dispute that the bank then cancels (Stripe: closed `won`) is `reinstated`: its money was
    recorded again under the dispute id (`reinstated_ref`), and the row must not say `failed`.
    A charge that succeeded and whose money went back later says how: `disputed_lost` (a card
    chargeback the creditor lost) or `refunded` (the creditor refunded it from Stripe), with the
    dispute or refund id (`reversed_ref`), so it does not keep saying `succeeded`.
    """

    __tablename__ = "installment_charges"
    __table_args__ = (UniqueConstraint("installment_id", "attempt"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    installment_id: Mapped[int] = mapped_column(
        ForeignKey("installments.id", ondelete="CASCADE"), index=True
    )
    saved_method_id: Mapped[int] = mapped_column(
        ForeignKey("saved_payment_methods.id", ondelete="CASCADE"), index=True
    )
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))  # card | sepa_debit
    provider: Mapped[str] = mapped_column(String(16))
    amount_minor: Mapped[MinorUnits]
    currency: Mapped[str] = mapped_column(String(3))
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    provider_ref: Mapped[str | None] = mapped_column(String(128), index=True)
    # processing | succeeded | failed | reinstated | disputed_lost | refunded
    status: Mapped[str] = mapped_column(String(16), index=True)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    settled_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    reinstated_ref: Mapped[str | None] = mapped_column(String(128))  # the dispute closed `won`
    reinstated_at: Mapped[datetime | None]
    reversed_ref: Mapped[str | None] = mapped_column(String(128))  # the dispute lost, the refund
    reversed_at: Mapped[datetime | None]


class PaymentReview(TimestampMixin, Base):
    """Money received that does not match what its payment link asked for, waiting for a person.

    A signed provider event paid 1 USD against a 7,970.46 EUR link, or named another debtor than
    the link's (issue 17.3). The payment row is kept (money is never lost) but allocated to nothing,
    the link stays open, and a collector decides: apply it to the debtor's account or close it
    (refunded, sent back) with a note.
    """

    __tablename__ = "payment_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_id: Mapped[int] = mapped_column(
        ForeignKey("payments.id", ondelete="CASCADE"), unique=True
    )
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    payment_link_id: Mapped[int | None] = mapped_column(ForeignKey("payment_links.id"))
    # amount | currency | debtor: what differed from the link (or the installment).
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    expected_minor: Mapped[int | None]
    expected_currency: Mapped[str | None] = mapped_column(String(3))
    expected_debtor_id: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    resolution: Mapped[str | None] = mapped_column(String(16))  # applied | closed
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    resolved_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(Text)
