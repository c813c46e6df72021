"""Payment links: creation, lookup by token, and starting a checkout.

A token (`relance.secret_links`, shared with the portal: 256 bits) lives only in the URL we
send; the database keeps its SHA-256, so a leaked table cannot be turned into working links. A link is bound to one
debtor, one amount and currency, expires after `payment_link_ttl_days`, and is single-use once paid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from payment_links.providers import CheckoutRequest, PaymentProvider
from relance import audit
from relance.db.base import utcnow
from relance.db.models import Debtor, Installment, Invoice, Payment, PaymentLink
from relance.db.models.enums import InstallmentStatus, InvoiceStatus
from relance.db.models.invoices import owed_by
from relance.errors import InvalidContent, PolicyViolation
from relance.ledger.models import SavedPaymentMethod
from relance.plans.repository import debtor_today
from relance.secret_links import hash_token, new_token, plausible
from relance.settings import Settings, get_settings

PURPOSES = ("balance", "installment", "promise")


class LinkState(StrEnum):
    OPEN = "open"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    PAID = "paid"
    SETTLED = "settled"  # everything it was for is already paid some other way
    PROCESSING = "processing"  # the provider checkout completed; its webhook is on the way


def link_url(token: str, settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    return f"{settings.public_base_url.rstrip('/')}/pay/{token}"


def create_link(
    session: Session,
    *,
    debtor: Debtor,
    purpose: str,
    amount_minor: int | None = None,
    invoice_ids: list[int] | None = None,
    installment: Installment | None = None,
) -> tuple[PaymentLink, str]:
    """Make a link for the full balance, one installment, or a promised amount; returns (row, url).

    The token itself is returned once, inside the URL, and never stored. Refused before anything
    is stored: `InvalidContent("unknown_purpose" | "installment_required" |
    "installment_not_debtors" | "amount_required")` for a request that cannot be right,
    `PolicyViolation("nothing_owed")` when there is nothing to pay (the portal's code too), and
    `PolicyViolation("mixed_currencies")` for invoices in several currencies (one link each).
    """
    if purpose not in PURPOSES:
        raise InvalidContent("unknown_purpose", f"unknown purpose {purpose!r}")
    settings = get_settings()
    if purpose == "installment":
        if installment is None:
            raise InvalidContent(
                "installment_required", "an installment link needs the installment"
            )
        if installment.plan.debtor_id != debtor.id:
            raise InvalidContent("installment_not_debtors", "installment belongs to another debtor")
        invoice_ids = invoice_ids or list(installment.plan.invoice_ids or [])
        currency = installment.plan.currency
        due = installment.amount_minor - installment.paid_minor
        amount_minor = amount_minor or due
    else:
        invoices = _open_invoices(session, debtor.id, invoice_ids)
        if not invoices and purpose == "balance":
            raise PolicyViolation("nothing_owed", "nothing is owed")
        currencies = {inv.currency for inv in invoices}
        if len(currencies) > 1:
            raise PolicyViolation(
                "mixed_currencies", "invoices in several currencies need one link per currency"
            )
        currency = currencies.pop() if currencies else "EUR"
        invoice_ids = [inv.id for inv in invoices]
        if purpose == "balance" and amount_minor is None:
            amount_minor = sum(inv.balance_minor for inv in invoices)
        if purpose == "promise" and amount_minor is None:
            raise InvalidContent("amount_required", "a promise link needs the promised amount")
    if not amount_minor or amount_minor <= 0:
        raise PolicyViolation("nothing_owed", "nothing is owed")
    token = new_token()
    link = PaymentLink(
        token_hash=hash_token(token),
        debtor_id=debtor.id,
        purpose=purpose,
        amount_minor=amount_minor,
        currency=currency,
        invoice_ids=invoice_ids or [],
        installment_id=installment.id if installment is not None else None,
        expires_at=utcnow() + timedelta(days=settings.payment_link_ttl_days),
    )
    session.add(link)
    session.flush()
    audit.record(
        session,
        actor="system",
        action="payment_link.created",
        entity=link,
        debtor_id=debtor.id,
        purpose=purpose,
        amount_minor=amount_minor,
        currency=currency,
        invoice_ids=invoice_ids,
        installment_id=link.installment_id,
        expires_at=link.expires_at,
    )
    return link, link_url(token, settings)


def _open_invoices(
    session: Session, debtor_id: int, invoice_ids: list[int] | None
) -> list[Invoice]:
    query = (
        select(Invoice)
        .where(Invoice.debtor_id == debtor_id, Invoice.status == InvoiceStatus.OPEN)
        .order_by(Invoice.due_date, Invoice.id)
    )
    if invoice_ids:
        query = query.where(Invoice.id.in_(invoice_ids))
    else:  # the balance: instalments still to come are not owed yet, so not asked for
        query = query.where(owed_by(debtor_today(session, debtor_id)))
    return [inv for inv in session.scalars(query) if inv.balance_minor > 0]


def find_link(session: Session, token: str, *, lock: bool = False) -> PaymentLink | None:
    """The link for this token; `lock` holds its row until commit (one checkout per link)."""
    if not plausible(token):
        return None
    query = select(PaymentLink).where(PaymentLink.token_hash == hash_token(token))
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalars(query).first()


def link_state(
    session: Session, link: PaymentLink | None, now: datetime | None = None
) -> LinkState:
    if link is None:
        return LinkState.UNKNOWN
    if link.paid_at is not None:
        return LinkState.PAID
    if (now or utcnow()) >= link.expires_at:
        return LinkState.EXPIRED
    if link.installment_id:
        installment = session.get(Installment, link.installment_id)
        if installment is not None and installment.status == InstallmentStatus.PAID:
            return LinkState.SETTLED
    if link.invoice_ids and link.purpose == "balance":
        invoices = session.scalars(select(Invoice).where(Invoice.id.in_(link.invoice_ids))).all()
        if invoices and all(inv.status != InvoiceStatus.OPEN for inv in invoices):
            return LinkState.SETTLED
    return LinkState.OPEN


def link_invoices(session: Session, link: PaymentLink) -> list[Invoice]:
    if not link.invoice_ids:
        return []
    return list(
        session.scalars(
            select(Invoice).where(Invoice.id.in_(link.invoice_ids)).order_by(Invoice.due_date)
        )
    )


@dataclass(frozen=True)
class CheckoutStart:
    state: LinkState
    url: str | None = None
    link: PaymentLink | None = None


def start_checkout(
    session: Session,
    token: str,
    provider: PaymentProvider,
    *,
    description: str,
    locale: str,
    settings: Settings | None = None,
    return_to: str | None = None,
) -> CheckoutStart:
    """Open (or resume) the provider checkout for a link.

    The link row is locked first, so a double click opens one checkout: the second request waits,
    then finds the session the first one stored and resumes it. A link that is not open never
    reaches the provider. `return_to` is the portal page the payment was started from (already
    checked, `payment_links.returns.portal_page`).
    """
    settings = settings or get_settings()
    link = find_link(session, token, lock=True)
    state = link_state(session, link)
    if state != LinkState.OPEN or link is None:
        return CheckoutStart(state=state, link=link)
    page = link_url(token, settings)
    # Back to this link's page either way, still carrying the portal's address when the
    # payment was started there (payment_links/returns.py: it ends on the portal).
    back = f"&return={quote(return_to, safe='/')}" if return_to else ""
    debtor = session.get(Debtor, link.debtor_id)
    request = CheckoutRequest(
        link_id=link.id,
        amount_minor=link.amount_minor,
        currency=link.currency,
        description=description,
        success_url=f"{page}?checkout=success{back}",
        cancel_url=f"{page}?checkout=cancelled{back}",
        expires_at=link.expires_at,
        locale=locale,
        metadata=link_metadata(link, provider.name),
        save_card=link.purpose == "installment",
        customer_email=debtor.email if debtor is not None else None,
    )
    if link.provider_session_id and link.provider == provider.name:
        status = provider.checkout_status(link.provider_session_id, request)
        if status.state == "open" and status.url:
            return CheckoutStart(state=state, url=status.url, link=link)
        if status.state == "complete" and not _payment_recorded(session, link):
            # Paid at the provider, webhook not processed yet: never open a second checkout.
            # (Once processed, a link still open had its payment held for review: the amount,
            # currency or debtor was not the link's, so it can be paid again.)
            return CheckoutStart(state=LinkState.PROCESSING, link=link)
    checkout = provider.create_checkout(request)
    link.provider = provider.name
    link.provider_session_id = checkout.id
    session.flush()
    audit.record(
        session,
        actor="debtor",
        action="payment_link.checkout_started",
        entity=link,
        debtor_id=link.debtor_id,
        provider=provider.name,
        provider_session_id=checkout.id,
    )
    return CheckoutStart(state=state, url=checkout.url, link=link)


def _payment_recorded(session: Session, link: PaymentLink) -> bool:
    query = select(Payment.id).where(Payment.payment_link_id == link.id).limit(1)
    return session.scalar(query) is not None


def link_metadata(link: PaymentLink, provider_name: str) -> dict[str, str]:
    """Ties provider objects back to us; copied onto the PaymentIntent too (out-of-order events)."""
    metadata = {
        "relance_kind": "link",
        "relance_provider": provider_name,
        "relance_link_id": str(link.id),
        "relance_debtor_id": str(link.debtor_id),
    }
    if link.installment_id:
        metadata["relance_installment_id"] = str(link.installment_id)
    return metadata


def charge_metadata(
    provider_name: str, *, debtor_id: int, installment_id: int, charge_key: str, kind: str
) -> dict[str, str]:
    """Ties an off-session PaymentIntent back to its installment charge (`InstallmentCharge`):
    the webhook finds the attempt by `relance_charge_key` when a SEPA debit settles or fails.

    The key is the attempt's idempotency key (installment + attempt), not its row id: a pass
    that dies after the provider answered is rerun with a new row (PostgreSQL does not give a
    rolled-back id again), and a request sent again under the same idempotency key must carry
    the same parameters, or Stripe refuses it (the debit it already made would then be marked
    failed, and the debtor told so, while the money is on its way)."""
    return {
        "relance_kind": "off_session",
        "relance_provider": provider_name,
        "relance_method": kind,
        "relance_debtor_id": str(debtor_id),
        "relance_installment_id": str(installment_id),
        "relance_charge_key": charge_key,
    }


def mandate_metadata(saved: SavedPaymentMethod, provider_name: str) -> dict[str, str]:
    """Ties a SetupIntent back to the pending mandate row it completes."""
    return {
        "relance_kind": "mandate",
        "relance_provider": provider_name,
        "relance_mandate_id": str(saved.id),
        "relance_debtor_id": str(saved.debtor_id),
    }
