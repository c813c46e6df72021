"""record_many (bank statements) leaves the same ledger as record_payment one by one: allocation
order, settled invoices out of dunning, credit, audit trail, thanks, outbox events (the creditor's
webhooks); promises, several payments for one debtor and known references go through
record_payment itself."""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import AuditEvent, Debtor, Invoice, Payment, PaymentAllocation, Promise
from relance.ledger.bulk import NewPayment, record_many
from relance.ledger.service import record_payment
from relance.outbox.models import OutboxEvent, WebhookDelivery, WebhookEndpoint
from tests.factories import make_debtor, make_invoice

RECEIVED = datetime(2026, 11, 20, tzinfo=UTC)
_refs = itertools.count(1)


def _world(db: Session) -> list[tuple[Debtor, list[Invoice], list[tuple[int, int | None]]]]:
    """Debtors, their invoices, and the payments (amount, index of the named invoice) they get."""
    cases: list[tuple[Debtor, list[Invoice], list[tuple[int, int | None]]]] = []

    def case(amounts: list[int], pays: list[tuple[int, int | None]], **kw: Any) -> Debtor:
        debtor = make_debtor(db, channels=("sms",) if kw.pop("contact", True) else ())
        invoices = [
            make_invoice(db, debtor, a, due=date(2026, 1 + i, 1), status=kw.get("status", "open"))
            for i, a in enumerate(amounts)
        ]
        cases.append((debtor, invoices, pays))
        return debtor

    case([1000, 2000], [(2000, 1)])  # named invoice paid first, the older one left open
    case([1000, 2000], [(1500, None)])  # oldest first, second partly paid
    case([1000], [(1800, 0)], contact=False)  # overpaid: credit; nobody to thank
    case([1000, 700], [(400, 0), (1300, None)])  # two payments for one debtor in the batch
    promised = case([5000], [(5000, None)])
    db.add(
        Promise(
            debtor_id=promised.id,
            amount_minor=5000,
            currency="EUR",
            promised_date=date(2026, 12, 1),
            invoice_ids=[],
        )
    )
    db.flush()
    return cases


def _pay(db: Session, bulk: bool, cases: list[Any]) -> list[int]:
    payments = [
        NewPayment(
            debtor_id=debtor.id,
            amount_minor=amount,
            currency="EUR",
            provider_ref=f"bulk-test:{next(_refs)}",
            received_at=RECEIVED,
            invoice_ids=(invoices[named].id,) if named is not None else (),
        )
        for debtor, invoices, pays in cases
        for amount, named in pays
    ]
    if bulk:
        return [
            r.payment_id
            for r in record_many(
                db, payments, method="transfer", provider="bank", recorded_by="test"
            )
        ]
    return [
        record_payment(
            db,
            debtor_id=p.debtor_id,
            amount_minor=p.amount_minor,
            currency=p.currency,
            method="transfer",
            provider="bank",
            provider_ref=p.provider_ref,
            invoice_ids=list(p.invoice_ids) or None,
            received_at=p.received_at,
            recorded_by="test",
        ).payment.id
        for p in payments
    ]


def _outbox(
    db: Session, debtor_id: int, invoices: list[Invoice], endpoint: WebhookEndpoint
) -> list[Any]:
    """The debtor's outbox events, each with its payment and invoices as indexes among the
    debtor's (ids and references differ between the two worlds), and its deliveries to
    `endpoint`."""
    payments = db.scalars(
        select(Payment).where(Payment.debtor_id == debtor_id).order_by(Payment.id)
    ).all()
    index = {p.id: i for i, p in enumerate(payments)}
    out = []
    for event in db.scalars(
        select(OutboxEvent).where(OutboxEvent.debtor_id == debtor_id).order_by(OutboxEvent.id)
    ):
        assert str(uuid.UUID(event.event_id, version=4)) == event.event_id  # the delivery key
        data = dict(event.data)
        payment = payments[index[data.pop("payment_id")]]
        assert data.pop("provider_ref") == payment.provider_ref
        ids = [i.id for i in invoices]
        data["paid_invoice_ids"] = [ids.index(i) for i in data["paid_invoice_ids"]]
        deliveries = db.scalars(
            select(WebhookDelivery.status).where(
                WebhookDelivery.event_id == event.id, WebhookDelivery.endpoint_id == endpoint.id
            )
        ).all()
        out.append((event.type, index[payment.id], sorted(data.items()), deliveries))
    return out


def _subscriber(db: Session) -> WebhookEndpoint:
    """A subscribed endpoint, so each event also queues its delivery (never sent here)."""
    endpoint = WebhookEndpoint(
        url="https://erp.example/hook", events=["payment.received"], secret_sealed="unused"
    )
    db.add(endpoint)
    db.flush()
    return endpoint


def _state(db: Session, cases: list[Any]) -> list[Any]:
    db.expire_all()
    out = []
    for debtor, invoices, _ in cases:
        allocations = db.execute(
            select(PaymentAllocation.invoice_id, PaymentAllocation.amount_minor)
            .join(Payment)
            .where(Payment.debtor_id == debtor.id)
            .order_by(PaymentAllocation.id)
        ).all()
        actions = Counter(
            db.scalars(select(AuditEvent.action).where(AuditEvent.debtor_id == debtor.id))
        )
        promises = db.scalars(select(Promise.status).where(Promise.debtor_id == debtor.id)).all()
        out.append(
            (
                [
                    (i.paid_minor, i.status, i.paid_at, i.dunning_paused_until)
                    for i in (db.get(Invoice, inv.id) for inv in invoices)
                    if i is not None
                ],
                db.get(Debtor, debtor.id).credit_minor,  # type: ignore[union-attr]
                [(invoices.index(db.get(Invoice, a)), m) for a, m in allocations],
                sorted(actions.items()),
                promises,
            )
        )
    return out


def test_bulk_and_one_by_one_leave_the_same_ledger(db: Session, gateway) -> None:  # type: ignore[no-untyped-def]
    one_by_one = _world(db)
    _pay(db, False, one_by_one)
    sent_before = len(gateway.sent)
    bulk = _world(db)
    ids = _pay(db, True, bulk)
    assert len(ids) == 6 and len(set(ids)) == 6
    assert _state(db, bulk) == _state(db, one_by_one)
    assert len(gateway.sent) - sent_before == sent_before  # the same thanks were sent
    first = _state(db, bulk)[0]
    assert first[0][1][1] == "paid" and first[0][0][1] == "open"
    assert _state(db, bulk)[2][1] == 800  # overpayment became credit


def test_bulk_and_one_by_one_emit_the_same_outbox_events(db: Session, gateway) -> None:  # type: ignore[no-untyped-def]
    """The creditor's system hears of a bank transfer whichever path recorded it: same event
    type, same data, a fresh event id (the deliveries' Idempotency-Key) each, one delivery per
    subscribed endpoint, in the recording transaction."""
    endpoint = _subscriber(db)
    one_by_one = _world(db)
    _pay(db, False, one_by_one)
    bulk = _world(db)
    _pay(db, True, bulk)
    db.expire_all()
    single_events = [_outbox(db, d.id, invoices, endpoint) for d, invoices, _ in one_by_one]
    bulk_events = [_outbox(db, d.id, invoices, endpoint) for d, invoices, _ in bulk]
    assert bulk_events == single_events
    # One payment.received per payment, each queued once for the endpoint.
    assert [len(e) for e in bulk_events] == [len(pays) for _, _, pays in bulk]
    assert all(e[0] == "payment.received" and e[3] == ["pending"] for d in bulk_events for e in d)
    named_paid = dict(bulk_events[0][0][2])
    assert named_paid["paid_invoice_ids"] == [1]  # the named, second invoice
    assert named_paid["credited_minor"] == 0
    assert named_paid["received_at"] == str(RECEIVED)
    assert dict(bulk_events[2][0][2])["credited_minor"] == 800
    keys = db.scalars(
        select(OutboxEvent.event_id).where(
            OutboxEvent.debtor_id.in_([d.id for d, _, _ in one_by_one + bulk])
        )
    ).all()
    assert len(keys) == len(set(keys)) == 12


def test_a_known_reference_is_recorded_once(db: Session, gateway) -> None:  # type: ignore[no-untyped-def]
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 1000, due=date(2026, 1, 1))
    payment = NewPayment(debtor.id, 400, "EUR", "bulk-test:same", RECEIVED, (invoice.id,))
    first = record_many(db, [payment], method="transfer", provider="bank", recorded_by="t")
    again = record_many(db, [payment], method="transfer", provider="bank", recorded_by="t")
    assert first[0].payment_id == again[0].payment_id
    db.refresh(invoice)
    assert invoice.paid_minor == 400
