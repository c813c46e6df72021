"""Stripe webhook processing, shared by real Stripe events and the sandbox checkout.

Order of operations: verify the signature (nothing is stored for a forgery), claim the event id
with an insert-on-conflict-do-nothing (a retried event is acknowledged and ignored), then apply it.
Payments are keyed by PaymentIntent id, so `checkout.session.completed` and
`payment_intent.succeeded` for one payment, in either order, record it once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import stripe
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from payment_links.providers import PaymentProvider, ProviderError
from relance import audit
from relance.db.base import utcnow
from relance.db.models import Debtor, Installment, PaymentLink, WebhookEvent
from relance.ledger.models import SavedPaymentMethod
from relance.ledger.service import record_payment

log = logging.getLogger(__name__)
PROVIDER = "stripe"


class InvalidSignature(Exception):
    """Missing, malformed, stale or forged Stripe-Signature."""


def verify(payload: bytes, signature: str | None, secret: str) -> dict[str, Any]:
    """Check Stripe-Signature (HMAC-SHA256, 5 minute tolerance) and parse the event."""
    if not secret.strip():
        # Anyone can sign with an empty key: nothing is accepted until a secret is configured.
        raise InvalidSignature("no webhook secret is configured")
    if not signature:
        raise InvalidSignature("missing Stripe-Signature header")
    try:
        stripe.Webhook.construct_event(payload, signature, secret)
        event = json.loads(payload)
    except (ValueError, stripe.SignatureVerificationError) as exc:
        raise InvalidSignature(str(exc)) from exc
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise InvalidSignature("not a Stripe event")
    return event


def claim(session: Session, event: dict[str, Any]) -> bool:
    """Store the event id once. False when it was already stored (a retry or a replay)."""
    table = WebhookEvent.__table__
    values = {
        "provider": PROVIDER,
        "event_id": str(event["id"])[:128],
        "kind": str(event["type"])[:64],
        "payload": event,
        "received_at": utcnow(),
    }
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["provider", "event_id"])
        .returning(table.c.id)
    )
    return session.execute(stmt).scalar_one_or_none() is not None


def process(
    session: Session,
    payload: bytes,
    signature: str | None,
    *,
    secret: str,
    provider: PaymentProvider,
) -> dict[str, Any]:
    """Verify, claim, apply. Returns the JSON body to answer; raises InvalidSignature on forgery."""
    event = verify(payload, signature, secret)
    if not claim(session, event):
        return {"received": True, "duplicate": True}
    handler = HANDLERS.get(event["type"])
    outcome = handler(session, event["data"]["object"], provider) if handler else "ignored"
    body = {"received": True, "outcome": outcome}
    row = session.query(WebhookEvent).filter_by(provider=PROVIDER, event_id=event["id"]).one()
    row.processed_at = utcnow()
    row.response_body = json.dumps(body)
    return body


def _metadata(obj: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (obj.get("metadata") or {}).items()}


def _link(session: Session, obj: dict[str, Any]) -> PaymentLink | None:
    link_id = _metadata(obj).get("relance_link_id")
    if link_id and link_id.isdigit():
        return session.get(PaymentLink, int(link_id))
    if obj.get("object") == "checkout.session" and obj.get("id"):
        return session.query(PaymentLink).filter_by(provider_session_id=obj["id"]).first()
    return None


def _provider_name(obj: dict[str, Any]) -> str:
    return _metadata(obj).get("relance_provider") or PROVIDER


def on_checkout_completed(session: Session, obj: dict[str, Any], provider: PaymentProvider) -> str:
    if obj.get("payment_status") not in ("paid", "no_payment_required"):
        return "awaiting_payment"  # async methods: checkout.session.async_payment_succeeded follows
    link = _link(session, obj)
    if link is None:
        return "unknown_link"
    intent_id = obj.get("payment_intent")
    if isinstance(intent_id, dict):
        intent_id = intent_id.get("id")
    outcome = record_payment(
        session,
        debtor_id=link.debtor_id,
        amount_minor=int(obj.get("amount_total") or link.amount_minor),
        currency=str(obj.get("currency") or link.currency),
        method="card",
        provider=_provider_name(obj),
        provider_ref=str(intent_id or obj["id"]),
        payment_link=link,
        recorded_by=f"{_provider_name(obj)}:webhook",
    )
    if link.paid_at is None:
        link.paid_at = outcome.payment.received_at
    if outcome.created and outcome.payment.amount_minor != link.amount_minor:
        # Money received is recorded as received; the difference is for a person to look at.
        audit.record(
            session,
            actor=f"{_provider_name(obj)}:webhook",
            action="payment.amount_mismatch",
            entity=link,
            debtor_id=link.debtor_id,
            expected_minor=link.amount_minor,
            received_minor=outcome.payment.amount_minor,
        )
    if link.installment_id and obj.get("customer") and intent_id:
        _save_card(session, link, str(intent_id), provider)
    return "recorded" if outcome.created else "already_recorded"


def _save_card(
    session: Session, link: PaymentLink, intent_id: str, provider: PaymentProvider
) -> None:
    """Keep the card the debtor agreed to save on a plan's payment, for later installments."""
    try:
        refs = provider.saved_card(intent_id)
    except ProviderError:
        log.warning("could not read the saved card of %s", intent_id, exc_info=True)
        return
    if refs is None:
        return
    customer_ref, method_ref = refs
    known = (
        session.query(SavedPaymentMethod)
        .filter_by(provider=provider.name, payment_method_ref=method_ref)
        .first()
    )
    if known is not None:
        return
    installment = session.get(Installment, link.installment_id) if link.installment_id else None
    saved = SavedPaymentMethod(
        debtor_id=link.debtor_id,
        plan_id=installment.plan_id if installment else None,
        provider=provider.name,
        customer_ref=customer_ref,
        payment_method_ref=method_ref,
    )
    session.add(saved)
    session.flush()
    audit.record(
        session,
        actor=f"{provider.name}:webhook",
        action="card.saved",
        entity=saved,
        debtor_id=link.debtor_id,
        plan_id=saved.plan_id,
    )


def on_intent_succeeded(session: Session, obj: dict[str, Any], provider: PaymentProvider) -> str:
    metadata = _metadata(obj)
    debtor_id = metadata.get("relance_debtor_id", "")
    if not debtor_id.isdigit() or session.get(Debtor, int(debtor_id)) is None:
        return "not_ours"
    link = _link(session, obj)
    installment_id = metadata.get("relance_installment_id", "")
    outcome = record_payment(
        session,
        debtor_id=int(debtor_id),
        amount_minor=int(obj.get("amount_received") or obj.get("amount") or 0),
        currency=str(obj.get("currency") or "eur"),
        method="card",
        provider=_provider_name(obj),
        provider_ref=str(obj["id"]),
        payment_link=link,
        installment_id=int(installment_id) if installment_id.isdigit() else None,
        recorded_by=f"{_provider_name(obj)}:webhook",
    )
    return "recorded" if outcome.created else "already_recorded"


def on_intent_failed(session: Session, obj: dict[str, Any], provider: PaymentProvider) -> str:
    """A declined attempt changes no balance; it is kept as evidence. The link stays usable."""
    metadata = _metadata(obj)
    debtor_id = metadata.get("relance_debtor_id", "")
    debtor = session.get(Debtor, int(debtor_id)) if debtor_id.isdigit() else None
    if debtor is None:
        return "not_ours"
    error = obj.get("last_payment_error") or {}
    audit.record(
        session,
        actor=f"{_provider_name(obj)}:webhook",
        action="payment.failed",
        debtor_id=debtor.id,
        provider_ref=obj.get("id"),
        amount_minor=obj.get("amount"),
        currency=obj.get("currency"),
        code=error.get("code") or error.get("decline_code"),
        kind=metadata.get("relance_kind"),
        payment_link_id=metadata.get("relance_link_id"),
    )
    return "failure_noted"


HANDLERS: dict[str, Callable[[Session, dict[str, Any], PaymentProvider], str]] = {
    "checkout.session.completed": on_checkout_completed,
    "checkout.session.async_payment_succeeded": on_checkout_completed,
    "payment_intent.succeeded": on_intent_succeeded,
    "payment_intent.payment_failed": on_intent_failed,
}
