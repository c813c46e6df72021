"""A bank-statement import tells the creditor's system (outbound webhooks) of each payment it
records, as a Stripe or one-by-one payment does: one `payment.received` per matched credit,
none for a line left for review, none again when the statement is refused as a duplicate."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.bank_statements import rf, service
from relance.db.models import Payment
from relance.errors import Conflict
from relance.outbox.models import OutboxEvent, WebhookDelivery, WebhookEndpoint
from tests.factories import make_debtor, make_invoice
from tests.relance.bank_statements.builders import Credit, camt053

DUE = date(2026, 10, 1)


def _events(db: Session, after: int) -> list[OutboxEvent]:
    return list(
        db.scalars(select(OutboxEvent).where(OutboxEvent.id > after).order_by(OutboxEvent.id))
    )


def test_each_matched_credit_emits_one_payment_received(db: Session, gateway) -> None:  # type: ignore[no-untyped-def]
    endpoint = WebhookEndpoint(url="https://erp.example/hook", events=[], secret_sealed="unused")
    db.add(endpoint)
    # Simple debtors (no promise, plan or task): the bulk path records their payments.
    debtors = [make_debtor(db, channels=("sms",)), make_debtor(db, channels=())]
    debtors.append(make_debtor(db, channels=("sms",)))
    invoices = [
        make_invoice(db, debtors[0], 12050, due=DUE),
        make_invoice(db, debtors[1], 5000, due=DUE),
        make_invoice(db, debtors[2], 7000, due=DUE),
    ]
    db.flush()
    before = db.scalar(select(OutboxEvent.id).order_by(OutboxEvent.id.desc()).limit(1)) or 0
    data = camt053(
        [
            Credit("120.50", ref="OB1", structured=rf.for_invoice(invoices[0].id)),
            Credit("9.99", ref="OB2", payer="Someone Unknown", remittance="cadeau"),
            Credit("60.00", ref="OB3", structured=rf.for_invoice(invoices[1].id)),  # 10 € credit
            Credit("30.00", ref="OB4", remittance=f"Facture {invoices[2].number}"),  # partial
        ],
        statement_id="S-OUTBOX-1",
    )
    report = service.import_statement(db, data, actor="test", filename="s.xml")
    assert (report.matched, report.review) == (3, 1)

    events = _events(db, before)
    assert [e.type for e in events] == ["payment.received"] * 3
    assert [e.data["payment_id"] for e in events] == report.payment_ids
    assert [e.debtor_id for e in events] == [d.id for d in debtors]
    assert len({e.event_id for e in events}) == 3
    for event in events:
        payment = db.get(Payment, event.data["payment_id"])
        assert payment is not None
        assert event.data["provider_ref"] == payment.provider_ref
        assert (event.data["method"], event.data["provider"]) == ("transfer", "bank")
        assert event.data["currency"] == "EUR"
    assert [e.data["amount_minor"] for e in events] == [12050, 6000, 3000]
    assert [e.data["paid_invoice_ids"] for e in events] == [[invoices[0].id], [invoices[1].id], []]
    assert [e.data["credited_minor"] for e in events] == [0, 1000, 0]
    deliveries = db.scalars(
        select(WebhookDelivery.event_id).where(WebhookDelivery.endpoint_id == endpoint.id)
    ).all()
    assert sorted(deliveries) == [e.id for e in events]  # each queued once for the endpoint

    with pytest.raises(Conflict) as again:
        service.import_statement(db, data, actor="test", filename="s.xml")
    assert again.value.code == "duplicate_statement"
    assert len(_events(db, before)) == 3  # nothing re-applied, nothing announced again
