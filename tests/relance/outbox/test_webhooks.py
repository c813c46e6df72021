"""Outbound webhooks: outbox in the domain transaction, signed deliveries, retries, idempotency."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from relance.db.base import utcnow
from relance.db.models import AuditEvent, Debtor, Invoice
from relance.errors import BadInput
from relance.ledger.service import record_payment
from relance.outbox import service as outbox
from relance.outbox.models import OutboxEvent, WebhookDelivery
from relance.outbox.signing import HEADER, SignatureError, sign, verify
from relance.promises.service import record_promise
from tests.factories import make_conversation, make_debtor, make_invoice


class Receiver:
    """The creditor's side: checks each signature, remembers idempotency keys, fails on demand."""

    def __init__(self, secret: str, fail_first: int = 0) -> None:
        self.secret, self.fail_first = secret, fail_first
        self.calls = 0
        self.processed: dict[str, dict[str, object]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        verify(self.secret, request.headers[HEADER], request.content)
        if self.calls <= self.fail_first:
            return httpx.Response(503, text="busy")
        key = request.headers["Idempotency-Key"]
        self.processed.setdefault(key, json.loads(request.content))
        return httpx.Response(200)


def factory(db: Session) -> sessionmaker[Session]:
    return sessionmaker(bind=db.get_bind(), join_transaction_mode="create_savepoint")


def debtor_with_invoice(db: Session) -> Debtor:
    debtor = make_debtor(db, customer_number="C-WH", name="Jeanne")
    make_invoice(db, debtor, 5_000, number="F-WH", issued=date(2026, 10, 1), due=date(2026, 10, 31))
    return debtor


def test_a_payment_emits_payment_received_in_its_transaction(db: Session) -> None:
    created = outbox.create_endpoint(
        db, url="https://erp.example/hook", events=[], description="", actor="admin"
    )
    debtor = debtor_with_invoice(db)
    savepoint = db.begin_nested()
    record_payment(
        db,
        debtor_id=debtor.id,
        amount_minor=5_000,
        currency="EUR",
        method="transfer",
        provider="bank",
        provider_ref="rolled-back",
        thank=False,
    )
    savepoint.rollback()  # the change did not happen: neither did its event
    # Scoped to this debtor: other tests' services commit their own events to the shared database.
    mine = select(OutboxEvent).where(OutboxEvent.debtor_id == debtor.id)
    assert db.scalar(select(func.count()).select_from(mine.subquery())) == 0
    record_payment(
        db,
        debtor_id=debtor.id,
        amount_minor=5_000,
        currency="EUR",
        method="transfer",
        provider="bank",
        provider_ref="BANK-1",
        thank=False,
    )
    event = db.scalars(mine).one()
    assert (event.type, event.data["amount_minor"], event.data["provider_ref"]) == (
        "payment.received",
        5_000,
        "BANK-1",
    )
    delivery = db.scalars(select(WebhookDelivery).where(WebhookDelivery.event == event)).one()
    assert delivery.endpoint_id == created.endpoint.id and delivery.status == "pending"


def test_delivery_is_signed_retried_with_backoff_and_idempotent(db: Session) -> None:
    created = outbox.create_endpoint(
        db, url="https://erp.example/hook", events=["promise.made"], description="", actor="a"
    )
    debtor = debtor_with_invoice(db)
    record_promise(db, debtor, amount_minor=5_000, promised_date=date(2026, 11, 5), currency="EUR")
    outbox.emit(db, "letter.sent", debtor_id=debtor.id)  # not subscribed: not queued
    db.flush()
    receiver = Receiver(created.secret, fail_first=2)
    transport = httpx.MockTransport(receiver)
    now = utcnow()
    assert outbox.deliver_due(factory(db), now=now, transport=transport) == {
        "delivered": 0,
        "retry": 1,
        "failed": 0,
    }
    delivery = db.scalars(select(WebhookDelivery)).one()
    db.refresh(delivery)
    assert delivery.next_attempt_at.replace(tzinfo=None) == (now + timedelta(seconds=30)).replace(
        tzinfo=None
    )
    assert delivery.last_status_code == 503
    # not due yet: nothing sent
    assert (
        outbox.deliver_due(factory(db), now=now + timedelta(seconds=5), transport=transport)[
            "retry"
        ]
        == 0
    )
    later = now + timedelta(seconds=31)
    outbox.deliver_due(factory(db), now=later, transport=transport)
    db.refresh(delivery)
    assert delivery.next_attempt_at.replace(tzinfo=None) == (later + timedelta(seconds=60)).replace(
        tzinfo=None
    )
    outbox.deliver_due(factory(db), now=later + timedelta(seconds=61), transport=transport)
    db.refresh(delivery)
    assert (delivery.status, delivery.attempts) == ("delivered", 3)
    [body] = receiver.processed.values()
    assert body["type"] == "promise.made" and body["debtor_id"] == debtor.id
    # the same event redelivered (answer lost) carries the same key: processed once
    delivery.status = "pending"
    delivery.next_attempt_at = later
    db.flush()
    outbox.deliver_due(factory(db), now=later + timedelta(minutes=5), transport=transport)
    assert receiver.calls == 4 and len(receiver.processed) == 1


def test_a_delivery_is_given_up_after_the_last_attempt(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "MAX_ATTEMPTS", 2)
    outbox.create_endpoint(
        db, url="http://down.example:9/none", events=[], description="", actor="a"
    )
    outbox.emit(db, "contact.opted_out", debtor_id=None, channel="sms")
    db.flush()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    transport = httpx.MockTransport(refuse)
    now = utcnow()
    outbox.deliver_due(factory(db), now=now, transport=transport)
    result = outbox.deliver_due(factory(db), now=now + timedelta(hours=1), transport=transport)
    assert result["failed"] == 1
    delivery = db.scalars(select(WebhookDelivery)).one()
    db.refresh(delivery)
    assert delivery.status == "failed" and "ConnectError" in (delivery.last_error or "")


def test_signature_verification_refuses_forgery_and_replay() -> None:
    body = b'{"id":"1"}'
    header = sign("whsec_x", body, 1_000_000)
    assert verify("whsec_x", header, body, now=1_000_010) == 1_000_000
    with pytest.raises(SignatureError, match="does not match"):
        verify("whsec_x", header, body + b" ", now=1_000_010)
    with pytest.raises(SignatureError, match="does not match"):
        verify("whsec_other", header, body, now=1_000_010)
    with pytest.raises(SignatureError, match="tolerance"):
        verify("whsec_x", header, body, now=1_000_000 + 3600)


def test_endpoints_are_audited_and_validated(db: Session) -> None:
    with pytest.raises(BadInput):
        outbox.create_endpoint(db, url="ftp://x", events=[], description="", actor="a")
    with pytest.raises(BadInput, match="Unknown events"):
        outbox.create_endpoint(
            db, url="https://x.example", events=["nope"], description="", actor="a"
        )
    created = outbox.create_endpoint(
        db, url="https://x.example", events=[], description="", actor="user:a@x"
    )
    outbox.set_active(db, created.endpoint.id, active=False, actor="user:a@x")
    actions = list(db.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions == ["webhook_endpoint.created", "webhook_endpoint.disabled"]
    assert created.secret not in json.dumps([e.details for e in db.scalars(select(AuditEvent))])


def test_domain_services_emit_their_events(db: Session) -> None:
    """Dispute opened and resolved, opt-out: each service writes its event with its change."""
    from relance.contacts.service import ensure_contact, opt_out
    from relance.disputes.service import create_dispute, decide_dispute

    debtor = debtor_with_invoice(db)
    dispute = create_dispute(db, debtor, reason="amount", details="wrong total")
    decide_dispute(db, dispute, upheld=True, note="agreed", actor="user:c@x")
    contact = ensure_contact(db, debtor, "sms", "+33639980055")
    opt_out(db, contact, source="sms", keyword="STOP")
    opt_out(db, contact, source="sms", keyword="STOP")  # already out: no second event
    db.flush()
    events = [(e.type, e.data) for e in db.scalars(select(OutboxEvent).order_by(OutboxEvent.id))]
    assert [t for t, _ in events] == ["dispute.opened", "dispute.resolved", "contact.opted_out"]
    assert events[1][1]["outcome"] == "upheld" and events[1][1]["invoice_status"] == "cancelled"


def test_plan_promise_escalation_and_letter_emit_their_events(db: Session, tmp_path: Path) -> None:
    """The other four events a creditor's system subscribes to (issue 22): each written by its
    service, in the same transaction as the change, with what the receiver needs to act on it."""
    from relance.handoff.service import create_handoff
    from relance.letters.service import create_formal_notice, mark_posted
    from relance.plans.service import create_plan, evaluate
    from tests.support.plan_limits import limits

    debtor = debtor_with_invoice(db)
    proposal = evaluate(
        limits(min_first_payment_pct=0, min_installment_minor=1_000),
        total_minor=5_000,
        currency="EUR",
        installments=2,
        frequency="monthly",
        today=date(2026, 11, 1),
    ).proposal
    assert proposal is not None
    plan = create_plan(db, debtor, proposal)
    promise = record_promise(
        db, debtor, amount_minor=5_000, promised_date=date(2026, 11, 5), currency="EUR"
    )
    conversation = make_conversation(db, debtor)
    create_handoff(db, conversation, reason="vulnerability", details="deuil")
    invoice = db.scalars(select(Invoice).where(Invoice.debtor_id == debtor.id)).one()
    letter = create_formal_notice(
        db, debtor, [invoice.id], payment_url="https://pay.example.test/p/t", out_dir=tmp_path
    )
    mark_posted(db, letter, "1A12345678901", actor="user:collector@example.test")
    db.flush()

    events = {e.type: e for e in db.scalars(select(OutboxEvent).order_by(OutboxEvent.id))}
    assert set(events) == {"plan.agreed", "promise.made", "escalation", "letter.sent"}
    assert all(e.debtor_id == debtor.id for e in events.values())
    agreed = events["plan.agreed"].data
    assert agreed["plan_id"] == plan.id and agreed["total_minor"] == 5_000
    assert [i["amount_minor"] for i in agreed["installments"]] == [2_500, 2_500]
    made = events["promise.made"].data
    assert made["promise_id"] == promise.id and made["amount_minor"] == 5_000
    assert events["escalation"].data["reason"] == "vulnerability"
    sent = events["letter.sent"].data
    assert sent["letter_id"] == letter.id and sent["tracking_number"] == "1A12345678901"
