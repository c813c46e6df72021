"""Emit domain events into the outbox, manage webhook endpoints, deliver with retries.

`emit` adds an `OutboxEvent` and one pending `WebhookDelivery` per subscribed endpoint to the
caller's unit of work: the event exists exactly when the domain change committed (no event for a
rolled-back change, no change without its event). The worker's `deliver_due` sends what is due,
outside any transaction, at least once: each request carries the event id as `Idempotency-Key`,
so a receiver that saw a delivery whose answer was lost recognises the retry.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session, sessionmaker

from relance import audit
from relance.audit import jsonable
from relance.backoff import exponential
from relance.db.base import utcnow
from relance.errors import BadInput, NotFound
from relance.outbox import destinations
from relance.outbox.models import OutboxEvent, WebhookDelivery, WebhookEndpoint
from relance.outbox.secret_box import SecretUnreadable, seal, unseal
from relance.outbox.signing import HEADER, new_secret, sign
from relance.settings import get_settings

log = logging.getLogger(__name__)

EVENTS = (
    "payment.received",
    "payment.reversed",
    "plan.agreed",
    "promise.made",
    "dispute.opened",
    "dispute.resolved",
    "escalation",
    "letter.sent",
    "contact.opted_out",
)
MAX_ATTEMPTS = 8
BASE_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=6)
LEASE = timedelta(minutes=5)  # a claimed delivery is not taken again before this
TIMEOUT_SECONDS = 10.0


def emit(session: Session, event_type: str, *, debtor_id: int | None, **data: Any) -> OutboxEvent:
    """Record an event in the caller's transaction and queue it for every subscribed endpoint."""
    return emit_many(session, event_type, [(debtor_id, data)])[0]


def emit_many(
    session: Session, event_type: str, events: Sequence[tuple[int | None, dict[str, Any]]]
) -> list[OutboxEvent]:
    """`emit` for many events of one type, (debtor_id, data) each, in the caller's transaction:
    the same rows, event ids and deliveries, with the subscribed endpoints read once (a bank
    statement's payments, `relance/ledger/bulk.py`)."""
    if event_type not in EVENTS:
        raise ValueError(f"unknown outbound event {event_type}")
    if not events:
        return []
    wanting = [
        endpoint
        for endpoint in session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.active))
        if endpoint.wants(event_type)
    ]
    emitted = []
    for debtor_id, data in events:
        event = OutboxEvent(
            event_id=str(uuid.uuid4()),
            type=event_type,
            debtor_id=debtor_id,
            data={k: jsonable(v) for k, v in data.items()},
            created_at=utcnow(),
        )
        session.add(event)
        for endpoint in wanting:
            session.add(WebhookDelivery(endpoint=endpoint, event=event, next_attempt_at=utcnow()))
        emitted.append(event)
    return emitted


def body_of(event: OutboxEvent) -> bytes:
    return json.dumps(
        {
            "id": event.event_id,
            "type": event.type,
            "created_at": event.created_at.isoformat(),
            "debtor_id": event.debtor_id,
            "data": event.data,
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()


@dataclass(frozen=True)
class NewEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # returned once, at creation or rotation; never shown again


def _allow_http() -> bool:
    """Plain http only outside production (a local receiver while developing)."""
    return get_settings().environment != "production"


def _seal(secret: str) -> str:
    return seal(secret, get_settings().secret_key)


def create_endpoint(
    session: Session, *, url: str, events: list[str], description: str, actor: str
) -> NewEndpoint:
    """Refuses (BadInput, nothing stored) a URL that is not https, carries credentials or points
    inside our network (`destinations`); the new secret is returned once and stored sealed."""
    if len(url) > 500 or len(description) > 200:
        raise BadInput("too_long", "URL (500) or description (200 characters) too long")
    destinations.check(url, allow_http=_allow_http())
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        raise BadInput("unknown_event", f"Unknown events: {', '.join(unknown)}")
    secret = new_secret()
    endpoint = WebhookEndpoint(
        url=url.strip(),
        events=sorted(set(events)),
        description=description,
        secret_sealed=_seal(secret),
        created_by=actor[:64],
    )
    session.add(endpoint)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="webhook_endpoint.created",
        entity=endpoint,
        url=endpoint.url,
        events=endpoint.events,
    )
    return NewEndpoint(endpoint, secret)


def _endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound("not_found", "No such webhook endpoint")
    return endpoint


def rotate_secret(session: Session, endpoint_id: int, *, actor: str) -> NewEndpoint:
    """A new signing secret, shown once; deliveries are signed when sent, so every later one
    (pending retries included) carries the new signature. The old secret stops working at once."""
    endpoint = _endpoint(session, endpoint_id)
    secret = new_secret()
    endpoint.secret_sealed = _seal(secret)
    audit.record(
        session,
        actor=actor,
        action="webhook_endpoint.secret_rotated",
        entity=endpoint,
        url=endpoint.url,
    )
    return NewEndpoint(endpoint, secret)


def set_active(session: Session, endpoint_id: int, *, active: bool, actor: str) -> WebhookEndpoint:
    endpoint = _endpoint(session, endpoint_id)
    endpoint.active = active
    audit.record(
        session,
        actor=actor,
        action="webhook_endpoint.enabled" if active else "webhook_endpoint.disabled",
        entity=endpoint,
        url=endpoint.url,
    )
    return endpoint


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min... doubled after each failed attempt, at most 6 hours."""
    return exponential(attempts, BASE_DELAY, MAX_DELAY)


@dataclass(frozen=True)
class _Claim:
    delivery_id: int
    url: str
    sealed_secret: str
    event_id: str
    event_type: str
    body: bytes


def deliver_due(
    factory: Callable[[], Session] | sessionmaker[Session],
    *,
    now: datetime | None = None,
    limit: int = 100,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, int]:
    """Send the deliveries that are due. Claims are committed before any request is made and
    no transaction is open while a receiver answers."""
    now = now or utcnow()
    with factory() as session, session.begin():
        due = session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        claims = []
        for delivery in due:
            delivery.next_attempt_at = now + LEASE
            claims.append(
                _Claim(
                    delivery.id,
                    delivery.endpoint.url,
                    delivery.endpoint.secret_sealed,
                    delivery.event.event_id,
                    delivery.event.type,
                    body_of(delivery.event),
                )
            )
    counts = {"delivered": 0, "retry": 0, "failed": 0}
    # Redirects are never followed: a 3xx could point anywhere, past the destination check.
    with httpx.Client(
        timeout=TIMEOUT_SECONDS, transport=transport, follow_redirects=False
    ) as client:
        for claim in claims:
            code, error = _send(client, claim)
            with factory() as session, session.begin():
                sent = session.get(WebhookDelivery, claim.delivery_id)
                if sent is None:  # its endpoint was deleted meanwhile
                    continue
                delivery = sent
                delivery.attempts += 1
                delivery.last_status_code, delivery.last_error = code, error
                if code is not None and 200 <= code < 300:
                    delivery.status, delivery.delivered_at = "delivered", utcnow()
                    counts["delivered"] += 1
                elif delivery.attempts >= MAX_ATTEMPTS:
                    delivery.status = "failed"
                    counts["failed"] += 1
                else:
                    delivery.next_attempt_at = now + backoff(delivery.attempts)
                    counts["retry"] += 1
    return counts


def _send(client: httpx.Client, claim: _Claim) -> tuple[int | None, str | None]:
    """Signed at the moment of sending: the receiver compares the timestamp with its clock.

    The URL is checked again first (DNS may have changed since the endpoint was created) and the
    request goes to the checked address, so it cannot be steered inside our network."""
    settings = get_settings()
    try:
        destination = destinations.check(claim.url, allow_http=settings.environment != "production")
        secret = unseal(claim.sealed_secret, settings.secret_key)
    except BadInput as exc:
        log.warning("webhook delivery %s refused: %s", claim.delivery_id, exc.message)
        return None, f"refused: {exc.message}"[:1000]
    except SecretUnreadable as exc:
        log.error("webhook delivery %s not signed: %s", claim.delivery_id, exc)
        return None, str(exc)
    headers = {
        "Host": destination.host_header,
        "Content-Type": "application/json",
        HEADER: sign(secret, claim.body, int(time.time())),
        "Idempotency-Key": claim.event_id,
        "Relance-Event": claim.event_type,
        "User-Agent": "Relance-Webhooks/1",
    }
    try:
        response = client.post(
            destination.url,
            content=claim.body,
            headers=headers,
            extensions={"sni_hostname": destination.host},  # the certificate is for the name
        )
    except httpx.HTTPError as exc:
        log.info("webhook delivery %s failed: %s", claim.delivery_id, exc)
        return None, f"{type(exc).__name__}: {exc}"[:1000]
    if 200 <= response.status_code < 300:
        return response.status_code, None
    if response.is_redirect:
        return response.status_code, "redirect not followed: the endpoint URL must answer itself"
    return response.status_code, response.text[:500]


def recent_deliveries(session: Session, limit: int = 100) -> list[WebhookDelivery]:
    return list(
        session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit))
    )


def endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def prune_delivered(session: Session, *, cutoff: datetime, limit: int = 5_000) -> int:
    """Delete events emitted before `cutoff` whose deliveries all succeeded (or that no endpoint
    wanted), with those deliveries: without it the outbox grows with every domain change forever.
    An event with a pending or failed delivery is kept: it is still due, or still evidence in the
    delivery log. The caller commits."""
    unfinished = exists().where(
        WebhookDelivery.event_id == OutboxEvent.id, WebhookDelivery.status != "delivered"
    )
    ids = list(
        session.scalars(
            select(OutboxEvent.id)
            .where(OutboxEvent.created_at < cutoff, ~unfinished)
            .order_by(OutboxEvent.id)
            .limit(limit)
        )
    )
    if ids:
        session.execute(delete(WebhookDelivery).where(WebhookDelivery.event_id.in_(ids)))
        session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_(ids)))
    return len(ids)


def scheduled_prune(now: datetime | None = None) -> int | None:
    """The daily retention job's outbox part: one committed unit of work (None: switched off)."""
    from relance.db.session import session_scope

    days = get_settings().retention_webhook_days
    if days < 1:
        return None
    with session_scope() as session:
        return prune_delivered(session, cutoff=(now or utcnow()) - timedelta(days=days))
