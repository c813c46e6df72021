"""SEPA Direct Debit mandates: a plan that collects itself in the euro zone.

The debtor who accepted a plan is offered to have each installment debited on its date. The
mandate is given on the provider's page (Stripe Checkout in setup mode, or the sandbox's page),
where the IBAN is typed: Relance only ever holds the provider's references, the IBAN's last four
characters, and the mandate reference and text as shown to the debtor. A mandate row is
`pending` until the provider says it is active (`setup_intent.succeeded`); the worker then
debits it like a saved card (`relance/followups/charges.py`). Revoked by the debtor (portal) or
made inactive by the bank (`mandate.updated`), it is never debited again and the installments go
back to payment links.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance import audit
from relance.db.base import utcnow
from relance.db.models import Debtor, PaymentPlan
from relance.db.models.enums import PlanStatus
from relance.errors import BadInput, Conflict, NotFound, PolicyViolation
from relance.ledger.models import SavedPaymentMethod
from relance.ledger.ports import get_payments

SEPA = "sepa_debit"
PENDING, ACTIVE, REVOKED, INACTIVE = "pending", "active", "revoked", "inactive"
# Where the euro is the currency and SEPA Direct Debit reaches the debtor's bank (2026: the 21
# euro area members, Bulgaria since 1 January 2026, and the four microstates using the euro).
EURO_COUNTRIES = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "CY",
        "DE",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PT",
        "SI",
        "SK",
        "AD",
        "MC",
        "SM",
        "VA",
    ]
)
MAX_MANDATE_TEXT = 4000


def sepa_offered(debtor: Debtor, plan: PaymentPlan) -> bool:
    """An active euro plan of a debtor living in the euro zone."""
    return (
        plan.status == PlanStatus.ACTIVE
        and plan.currency == "EUR"
        and (debtor.country or "").upper() in EURO_COUNTRIES
    )


def mandates_of(session: Session, debtor: Debtor) -> list[SavedPaymentMethod]:
    """The debtor's SEPA mandates, newest first (pending ones included: they say "in progress")."""
    return list(
        session.scalars(
            select(SavedPaymentMethod)
            .where(SavedPaymentMethod.debtor_id == debtor.id, SavedPaymentMethod.kind == SEPA)
            .order_by(SavedPaymentMethod.id.desc())
        )
    )


def offered_plan(session: Session, debtor: Debtor, plan_id: int) -> PaymentPlan:
    """The debtor's plan, when a mandate can be given for it now; the refusal otherwise."""
    plan = session.get(PaymentPlan, plan_id)
    if plan is None or plan.debtor_id != debtor.id:
        raise NotFound("plan_not_found", "no such payment plan")
    if not sepa_offered(debtor, plan):
        raise PolicyViolation(
            "sepa_not_available", "direct debit is offered for active euro plans in the euro zone"
        )
    if any(m.status == ACTIVE and m.plan_id == plan.id for m in mandates_of(session, debtor)):
        raise Conflict("mandate_exists", "this plan is already paid by direct debit")
    return plan


def provider_in_use() -> str:
    """The provider a new mandate is given to (`stripe`, `sandbox`): the one the mandate text
    names, and the one `start_sepa` records."""
    return get_payments().provider_name()


def start_sepa(
    session: Session,
    debtor: Debtor,
    plan_id: int,
    *,
    mandate_text: str,
    locale: str,
    return_url: str,
) -> str:
    """A pending mandate for the plan, and the URL of the provider's page where it is given."""
    plan = offered_plan(session, debtor, plan_id)
    text = mandate_text.strip()
    if not text or len(text) > MAX_MANDATE_TEXT:
        raise BadInput("mandate_text_missing", "the mandate text shown to the debtor is required")
    payments = get_payments()
    saved = SavedPaymentMethod(
        debtor_id=debtor.id,
        plan_id=plan.id,
        provider=payments.provider_name(),
        kind=SEPA,
        status=PENDING,
        mandate_text=text,
    )
    session.add(saved)
    session.flush()
    setup = payments.start_mandate(session, saved=saved, locale=locale, return_url=return_url)
    saved.setup_ref = setup.setup_ref
    audit.record(
        session,
        actor="debtor",
        action="mandate.requested",
        entity=saved,
        debtor_id=debtor.id,
        plan_id=plan.id,
        provider=saved.provider,
    )
    return setup.url


def activate(
    session: Session,
    saved: SavedPaymentMethod,
    *,
    customer_ref: str,
    payment_method_ref: str,
    mandate_ref: str,
    mandate_reference: str,
    last4: str,
    actor: str,
) -> bool:
    """The provider confirmed the mandate; False when it was no longer pending (a replay, or a
    debtor who revoked it meanwhile: a revoked mandate is never revived)."""
    if saved.status != PENDING:
        return False
    saved.status = ACTIVE
    saved.customer_ref = customer_ref
    saved.payment_method_ref = payment_method_ref
    saved.mandate_ref = mandate_ref
    saved.mandate_reference = mandate_reference
    saved.last4 = last4[-4:]
    audit.record(
        session,
        actor=actor,
        action="mandate.active",
        entity=saved,
        debtor_id=saved.debtor_id,
        plan_id=saved.plan_id,
        mandate_reference=mandate_reference,
        last4=saved.last4,
    )
    return True


def deactivate(session: Session, saved: SavedPaymentMethod, *, status: str, actor: str) -> bool:
    """Stop debiting this mandate (`revoked` by the debtor, `inactive` from the bank); False
    when it already was stopped."""
    if saved.status in (REVOKED, INACTIVE):
        return False
    saved.status = status
    saved.revoked_at = utcnow()
    audit.record(
        session,
        actor=actor,
        action=f"mandate.{status}",
        entity=saved,
        debtor_id=saved.debtor_id,
        plan_id=saved.plan_id,
        mandate_reference=saved.mandate_reference,
    )
    return True


def revoke(session: Session, debtor: Debtor, mandate_id: int) -> SavedPaymentMethod:
    """The debtor withdraws the mandate: the provider is told first (Stripe detaches the method,
    which revokes the mandate there), then it is never debited again by us."""
    saved = session.get(SavedPaymentMethod, mandate_id)
    if saved is None or saved.debtor_id != debtor.id or saved.kind != SEPA:
        raise NotFound("mandate_not_found", "no such direct debit mandate")
    if saved.status in (REVOKED, INACTIVE):
        raise Conflict("mandate_stopped", "this mandate is already stopped")
    get_payments().revoke_method(session, saved=saved)
    deactivate(session, saved, status=REVOKED, actor="debtor")
    return saved
