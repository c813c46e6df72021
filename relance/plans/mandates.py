"""Plans that collect themselves: a SEPA Direct Debit mandate in the euro zone, a card kept on
file for off-session charges elsewhere.

The debtor who accepted a plan is offered to have each installment taken on its date: by SEPA
Direct Debit when the plan is in euros and the debtor lives where the euro is the currency, by a
card kept on file otherwise (another currency, or a debtor outside the euro zone, whom SEPA does
not reach). The mandate or the card is given on the provider's page (Stripe Checkout in setup
mode, or the sandbox's page), where the IBAN or card number is typed: Relance only ever holds
the provider's references, the last four characters, and the text the debtor agreed to (the
mandate text, or the card consent). A row is `pending` until the provider says it is active
(`setup_intent.succeeded`); the worker then charges it (`relance/followups/charges.py`).
Revoked by the debtor (portal) or made inactive by the bank (`mandate.updated`), it is never
charged again and the installments go back to payment links.
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
CARD = "card"
KINDS = (SEPA, CARD)
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


def card_offered(debtor: Debtor, plan: PaymentPlan) -> bool:
    """An active plan that SEPA Direct Debit cannot collect (another currency, or a debtor
    outside the euro zone): a card kept on file instead."""
    return plan.status == PlanStatus.ACTIVE and not sepa_offered(debtor, plan)


def automatic_kind(debtor: Debtor, plan: PaymentPlan) -> str | None:
    """How this plan can collect itself now (`sepa_debit`, `card`), or None (not active)."""
    if sepa_offered(debtor, plan):
        return SEPA
    if card_offered(debtor, plan):
        return CARD
    return None


def methods_of(session: Session, debtor: Debtor) -> list[SavedPaymentMethod]:
    """Every mandate and card the debtor keeps on file, newest first, pending ones included."""
    return list(
        session.scalars(
            select(SavedPaymentMethod)
            .where(SavedPaymentMethod.debtor_id == debtor.id)
            .order_by(SavedPaymentMethod.id.desc())
        )
    )


def offered_plan(session: Session, debtor: Debtor, plan_id: int, kind: str = SEPA) -> PaymentPlan:
    """The debtor's plan, when a mandate (or a card, `kind`) can be given for it now; the
    refusal otherwise."""
    plan = session.get(PaymentPlan, plan_id)
    if plan is None or plan.debtor_id != debtor.id:
        raise NotFound("plan_not_found", "no such payment plan")
    if kind == SEPA and not sepa_offered(debtor, plan):
        raise PolicyViolation(
            "sepa_not_available", "direct debit is offered for active euro plans in the euro zone"
        )
    if kind == CARD and not card_offered(debtor, plan):
        raise PolicyViolation(
            "card_not_available",
            "a card on file is offered for active plans that direct debit cannot collect",
        )
    if any(m.status == ACTIVE and m.plan_id == plan.id for m in methods_of(session, debtor)):
        raise Conflict("mandate_exists", "this plan is already paid automatically")
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
    cancel_url: str,
) -> str:
    """A pending mandate for the plan, and the URL of the provider's page where it is given
    (back to `return_url` once given, to `cancel_url` if the debtor leaves it)."""
    return _start(
        session,
        debtor,
        plan_id,
        SEPA,
        text=mandate_text,
        locale=locale,
        return_url=return_url,
        cancel_url=cancel_url,
    )


def start_card(
    session: Session,
    debtor: Debtor,
    plan_id: int,
    *,
    consent_text: str,
    locale: str,
    return_url: str,
    cancel_url: str,
) -> str:
    """A pending card on file for the plan, and the URL of the provider's page where the card
    is given; `consent_text` (what the debtor agreed to: the charges, their amounts and dates)
    is stored with it."""
    return _start(
        session,
        debtor,
        plan_id,
        CARD,
        text=consent_text,
        locale=locale,
        return_url=return_url,
        cancel_url=cancel_url,
    )


def _start(
    session: Session,
    debtor: Debtor,
    plan_id: int,
    kind: str,
    *,
    text: str,
    locale: str,
    return_url: str,
    cancel_url: str,
) -> str:
    plan = offered_plan(session, debtor, plan_id, kind)
    agreed = text.strip()
    if not agreed or len(agreed) > MAX_MANDATE_TEXT:
        raise BadInput("mandate_text_missing", "the text shown to the debtor is required")
    payments = get_payments()
    saved = SavedPaymentMethod(
        debtor_id=debtor.id,
        plan_id=plan.id,
        provider=payments.provider_name(),
        kind=kind,
        status=PENDING,
        mandate_text=agreed,
    )
    session.add(saved)
    session.flush()
    setup = payments.start_mandate(
        session, saved=saved, locale=locale, return_url=return_url, cancel_url=cancel_url
    )
    saved.setup_ref = setup.setup_ref
    audit.record(
        session,
        actor="debtor",
        action="mandate.requested" if kind == SEPA else "card.requested",
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
    mandate_ref: str | None,
    mandate_reference: str | None,
    last4: str,
    actor: str,
) -> bool:
    """The provider confirmed the mandate or the card (which has no mandate); False when it was
    no longer pending (a replay, or a debtor who revoked it meanwhile: a revoked one is never
    revived)."""
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
        action="mandate.active" if saved.kind == SEPA else "card.active",
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
        action=f"{'mandate' if saved.kind == SEPA else 'card'}.{status}",
        entity=saved,
        debtor_id=saved.debtor_id,
        plan_id=saved.plan_id,
        mandate_reference=saved.mandate_reference,
    )
    return True


def revoke(session: Session, debtor: Debtor, mandate_id: int) -> SavedPaymentMethod:
    """The debtor withdraws a mandate or stops the card's automatic charges: the provider is
    told first (Stripe detaches the method, which revokes a mandate there), then it is never
    charged again by us."""
    saved = session.get(SavedPaymentMethod, mandate_id)
    if saved is None or saved.debtor_id != debtor.id or saved.kind not in KINDS:
        raise NotFound("mandate_not_found", "no such direct debit mandate or card")
    if saved.status in (REVOKED, INACTIVE):
        raise Conflict(
            "mandate_stopped" if saved.kind == SEPA else "card_stopped",
            "these automatic payments are already stopped",
        )
    get_payments().revoke_method(session, saved=saved)
    deactivate(session, saved, status=REVOKED, actor="debtor")
    return saved
