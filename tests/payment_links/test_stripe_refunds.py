"""Refunds made from Stripe's dashboard (`refund.created`, `refund.updated`, `charge.refunded`)
through the signed webhook: exactly the refunded amount leaves the ledger, once per refund id,
partial refunds accumulate and never go beyond the payment; what it reopened is held for a
collector (a `refunded` dispute, a `payment_refunded` task) instead of being dunned again; an
instalment charged off-session says `refunded`. A refund of a payment we do not know is kept for
review and answered 2xx; a bad one is a 4xx and stores nothing.

And a card dispute lost on an off-session instalment charge turns its row to `disputed_lost`.

A refund that reopens a payment-plan instalment holds it too, against the plan's own follow-ups
(reminder, off-session charge, "missed"), until the collector's decision: rejected, it is due
and charged again; upheld, the plan asks no more than its invoices still owe."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock

import pytest
from sqlalchemy import func, select

from payment_links.providers.sandbox import card_method_ref
from payment_links.service import charge_metadata
from relance.accounting.export import journal
from relance.db.models import AuditEvent, Dispute, Invoice, Payment, Task, WebhookEvent
from relance.disputes.service import decide_dispute
from relance.dunning.context import InvoiceRow, load_contexts, skip_reason
from relance.dunning.planner import INVOICE_COLUMNS
from relance.followups import charges
from relance.followups.service import run_followups
from relance.ledger.models import InstallmentCharge, SavedPaymentMethod
from relance.ledger.service import record_payment
from relance.outbox.models import OutboxEvent
from relance.portal.service import charge_failures, charge_reversals
from tests.factories import make_debtor, make_invoice, make_mandate, make_plan, make_promise
from tests.support.installments import charges_of
from tests.support.stripe_fake import StripeFake

SECRET = "whsec_test_secret"
TODAY = date(2026, 3, 10)


def refund(
    intent_id: str | None,
    *,
    amount: int,
    currency: str = "eur",
    status: str = "succeeded",
    reason: str | None = "requested_by_customer",
    refund_id: str | None = None,
) -> dict:
    """A Refund as Stripe's API reference shows it (`refund.created` / `refund.updated`)."""
    return {
        "id": refund_id or "re_" + secrets.token_hex(12),
        "object": "refund",
        "amount": amount,
        "balance_transaction": "txn_" + secrets.token_hex(12),
        "charge": "ch_" + secrets.token_hex(12),
        "created": int(time.time()),
        "currency": currency,
        "destination_details": {"card": {"type": "refund"}, "type": "card"},
        "metadata": {},
        "payment_intent": intent_id,
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": status,
        "transfer_reversal": None,
    }


def _deliver(client, kind, obj, *, event_id=None):
    payload, header = StripeFake.signed(StripeFake.event(kind, obj, event_id=event_id), SECRET)
    return client.post("/stripe/webhook", content=payload, headers={"Stripe-Signature": header})


def _card_payment(db, amount=4000, intent="pi_card_refunded"):
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, amount, due=TODAY - timedelta(days=40))
    outcome = record_payment(
        db,
        debtor_id=debtor.id,
        amount_minor=amount,
        currency="EUR",
        method="card",
        provider="stripe",
        provider_ref=intent,
        thank=False,
    )
    assert invoice.status == "paid"
    return debtor, invoice, outcome.payment


def _count(db, model):
    return db.scalar(select(func.count()).select_from(model))


def _tasks(db, debtor_id):
    return db.scalars(
        select(Task).where(Task.debtor_id == debtor_id, Task.kind == "followup")
    ).all()


def _skip(db, invoice):
    """Why the dunning planner would not remind this invoice today."""
    row = db.execute(select(*INVOICE_COLUMNS).where(Invoice.id == invoice.id)).one()
    contexts = load_contexts(db, TODAY, debtor_ids=[invoice.debtor_id])
    return skip_reason(InvoiceRow._make(row), contexts[invoice.debtor_id], TODAY)


def test_a_full_refund_reverses_the_payment_and_holds_the_invoice_once(client, db, gateway):
    debtor, invoice, payment = _card_payment(db)
    promise = make_promise(
        db, debtor, 4000, TODAY + timedelta(days=5), created_at=datetime.now(UTC) - timedelta(1)
    )
    promise.status = "kept"
    gateway.sent.clear()
    made = refund("pi_card_refunded", amount=4000, refund_id="re_full")

    answer = _deliver(client, "refund.created", made, event_id="evt_refund")

    assert answer.status_code == 200 and answer.json()["outcome"] == "payment_refunded"
    db.refresh(payment)
    db.refresh(invoice)
    assert (payment.reversed_minor, payment.reversal_reason) == (
        4000,
        "refund:requested_by_customer",
    )
    assert invoice.paid_minor == 0 and invoice.status == "disputed"
    (hold,) = db.scalars(select(Dispute).where(Dispute.debtor_id == debtor.id)).all()
    assert (hold.reason, hold.invoice_id, hold.status, hold.details) == (
        "refunded",
        invoice.id,
        "open",
        "re_full",
    )
    assert _skip(db, invoice) == ("disputed", "an open dispute pauses dunning")
    (task,) = [t for t in _tasks(db, debtor.id) if t.details["reason"] == "payment_refunded"]
    assert task.details["refund_ref"] == "re_full" and task.details["invoice_ids"] == [invoice.id]
    assert task.details["amount_minor"] == 4000 and task.details["partial"] is False
    assert "decide whether the debt is still owed" in task.details["decide"]
    (audit,) = db.scalars(select(AuditEvent).where(AuditEvent.action == "payment.refunded")).all()
    assert (audit.details["refund_ref"], audit.details["dispute_ids"]) == ("re_full", [hold.id])
    assert gateway.sent == []  # the debtor is not dunned (nor thanked) automatically
    assert promise.status == "kept"  # the debtor kept it; the creditor gave the money back

    # The same event, the same refund in a later event, and the charge that lists it.
    same = _deliver(client, "refund.created", made, event_id="evt_refund")
    updated = _deliver(client, "refund.updated", made)
    charge = {
        "id": made["charge"],
        "object": "charge",
        "amount": 4000,
        "amount_refunded": 4000,
        "currency": "eur",
        "payment_intent": "pi_card_refunded",
        "refunded": True,
        "metadata": {},
        "refunds": {"object": "list", "data": [made], "has_more": False},
    }
    listed = _deliver(client, "charge.refunded", charge)
    assert same.json() == {"received": True, "duplicate": True}
    assert updated.json()["outcome"] == "already_refunded"
    assert listed.json()["outcome"] == "already_refunded"
    db.refresh(payment)
    assert payment.reversed_minor == 4000
    assert len(db.scalars(select(Dispute).where(Dispute.debtor_id == debtor.id)).all()) == 1
    assert len([t for t in _tasks(db, debtor.id) if t.details["reason"] == "payment_refunded"]) == 1

    # One decision, one task: no second "dispute review" task, and no "dispute opened" event to
    # the creditor's system for a refund it made itself.
    assert db.scalars(select(Task).where(Task.kind == "dispute_review")).all() == []
    assert db.scalars(select(OutboxEvent).where(OutboxEvent.type == "dispute.opened")).all() == []

    # The collector decides the debt is still owed: dunning resumes on it, the task is done.
    decide_dispute(db, hold, upheld=False, note="refunded by mistake", actor="collector:ann")
    assert invoice.status == "open" and _skip(db, invoice) is None
    assert task.status == "done"


def test_partial_refunds_accumulate_and_never_go_beyond_the_payment(client, db, gateway):
    debtor, invoice, payment = _card_payment(db)

    first = _deliver(client, "refund.created", refund("pi_card_refunded", amount=1000))
    second = _deliver(client, "refund.created", refund("pi_card_refunded", amount=1500))

    assert [first.json()["outcome"], second.json()["outcome"]] == ["payment_refunded"] * 2
    db.refresh(payment)
    db.refresh(invoice)
    assert (payment.reversed_minor, invoice.paid_minor, invoice.status) == (2500, 1500, "disputed")
    assert len(db.scalars(select(Dispute).where(Dispute.debtor_id == debtor.id)).all()) == 1
    refunded = [t for t in _tasks(db, debtor.id) if t.details["reason"] == "payment_refunded"]
    assert [t.details["amount_minor"] for t in refunded] == [1000, 1500]
    assert all(t.details["partial"] for t in refunded)

    # More than what is left of it: only what is left comes back.
    third = _deliver(client, "refund.created", refund("pi_card_refunded", amount=2000))
    assert third.json()["outcome"] == "payment_refunded"
    db.refresh(payment)
    db.refresh(invoice)
    assert payment.reversed_minor == 4000 and invoice.paid_minor == 0
    fourth = _deliver(client, "refund.created", refund("pi_card_refunded", amount=10))
    assert fourth.json()["outcome"] == "nothing_left_to_refund"
    db.refresh(payment)
    assert payment.reversed_minor == 4000


def test_a_pending_refund_moves_nothing_until_it_succeeds(client, db, gateway):
    _, invoice, payment = _card_payment(db)
    made = refund("pi_card_refunded", amount=4000, status="pending", refund_id="re_later")

    pending = _deliver(client, "refund.created", made)
    failed = _deliver(
        client, "refund.updated", refund("pi_card_refunded", amount=50, status="failed")
    )

    assert pending.json()["outcome"] == "refund_pending"
    assert failed.json()["outcome"] == "refund_not_made"
    db.refresh(payment)
    assert payment.reversed_minor == 0 and invoice.status == "paid"
    done = _deliver(client, "refund.updated", dict(made, status="succeeded"))
    assert done.json()["outcome"] == "payment_refunded"
    db.refresh(payment)
    assert payment.reversed_minor == 4000


def test_a_refund_of_a_payment_we_do_not_know_is_kept_for_review_once(client, db, gateway):
    _, invoice, payment = _card_payment(db)
    before = (_count(db, Payment), _count(db, Dispute))
    made = refund("pi_nobody_knows", amount=999, refund_id="re_stranger")

    answer = _deliver(client, "refund.created", made)
    again = _deliver(client, "refund.updated", made)
    no_intent = _deliver(client, "refund.created", refund(None, amount=5, refund_id="re_no_pi"))

    assert answer.status_code == 200 and answer.json()["outcome"] == "unmatched_refund"
    assert again.status_code == 200 and again.json()["outcome"] == "unmatched_refund_known"
    assert no_intent.status_code == 200 and no_intent.json()["outcome"] == "unmatched_refund"
    tasks = db.scalars(select(Task).where(Task.debtor_id.is_(None))).all()
    assert sorted(t.details["refund_ref"] for t in tasks) == ["re_no_pi", "re_stranger"]
    stranger = next(t for t in tasks if t.details["refund_ref"] == "re_stranger")
    assert stranger.details == {
        "reason": "refund_unmatched",
        "refund_ref": "re_stranger",
        "payment_ref": "pi_nobody_knows",
        "status": "succeeded",
        "amount_minor": 999,
        "currency": "EUR",
    }
    assert (_count(db, Payment), _count(db, Dispute)) == before
    db.refresh(payment)
    assert payment.reversed_minor == 0 and invoice.status == "paid"


@pytest.mark.parametrize(
    ("kind", "change"),
    [
        ("refund.created", {"amount": "4000"}),
        ("refund.created", {"amount": -1}),
        ("refund.created", {"amount": 4001}),
        ("refund.created", {"currency": "usd"}),
        ("refund.created", {"currency": None}),
        ("refund.created", {"status": "refunded_by_magic"}),
        ("refund.created", {"object": "charge"}),
        ("refund.created", {"id": ""}),
        ("refund.created", {"reason": 7}),
        ("refund.created", {"payment_intent": 12}),
        ("refund.updated", {"amount": None}),
        ("charge.refunded", {"object": "refund"}),
        ("charge.refunded", {"refunds": {"data": "all of them"}}),
        ("charge.refunded", {"amount_refunded": None}),
        ("charge.refunded", {"refunds": {"data": [{"object": "refund", "id": "re_x"}]}}),
    ],
)
def test_malformed_refunds_are_refused_and_store_nothing(client, db, gateway, kind, change):
    _, invoice, payment = _card_payment(db)
    before = (_count(db, WebhookEvent), _count(db, Task), _count(db, AuditEvent))
    if kind == "charge.refunded":
        made = refund("pi_card_refunded", amount=4000)
        obj = {
            "id": "ch_refunded",
            "object": "charge",
            "amount_refunded": 4000,
            "currency": "eur",
            "payment_intent": "pi_card_refunded",
            "refunds": {"object": "list", "data": [made]},
            **change,
        }
    else:
        obj = dict(refund("pi_card_refunded", amount=4000), **change)

    answer = _deliver(client, kind, obj)

    assert answer.status_code == 400 and answer.json()["code"] == "malformed_event"
    assert answer.json()["message"]
    assert (_count(db, WebhookEvent), _count(db, Task), _count(db, AuditEvent)) == before
    db.refresh(payment)
    assert payment.reversed_minor == 0 and invoice.status == "paid"


def test_a_charge_refunded_without_its_refunds_moves_nothing(client, db, gateway):
    """Since API version 2022-11-15 a Charge lists no refunds unless expanded: the refund ids
    (and so the once-per-refund guarantee) come with `refund.created`."""
    _, invoice, payment = _card_payment(db)
    charge = {
        "id": "ch_plain",
        "object": "charge",
        "amount_refunded": 4000,
        "currency": "eur",
        "payment_intent": "pi_card_refunded",
        "refunded": True,
        "metadata": {},
    }

    answer = _deliver(client, "charge.refunded", charge)

    assert answer.status_code == 200 and answer.json()["outcome"] == "refunds_in_refund_events"
    db.refresh(payment)
    assert payment.reversed_minor == 0 and invoice.status == "paid"


def _card_instalment(db, intent, kind="card"):
    """A plan instalment charged off-session with a card kept on file (or a SEPA mandate),
    settled."""
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 4000, due=TODAY - timedelta(days=40))
    plan = make_plan(
        db, debtor, [2000, 2000], first_due=TODAY + timedelta(days=20), invoices=[invoice]
    )
    saved = SavedPaymentMethod(
        debtor_id=debtor.id,
        plan_id=plan.id,
        provider="stripe",
        kind=kind,
        payment_method_ref=f"pm_{intent}",
        customer_ref="cus_card",
    )
    db.add(saved)
    db.flush()
    charge = InstallmentCharge(
        installment_id=plan.installments[0].id,
        saved_method_id=saved.id,
        debtor_id=debtor.id,
        attempt=1,
        kind=kind,
        provider="stripe",
        amount_minor=2000,
        currency="EUR",
        idempotency_key=f"relance-installment-{plan.installments[0].id}-attempt-1",
        provider_ref=intent,
        status=charges.PROCESSING,
    )
    db.add(charge)
    db.flush()
    charges.settled(db, charge, amount_minor=2000, currency="EUR", actor="system:off_session")
    assert charge.status == "succeeded" and plan.installments[0].status == "paid"
    return debtor, invoice, plan, charge


def _late_success(client, debtor, charge):
    intent = {
        "id": charge.provider_ref,
        "object": "payment_intent",
        "amount": 2000,
        "amount_received": 2000,
        "currency": "eur",
        "status": "succeeded",
        "metadata": charge_metadata(
            "stripe",
            debtor_id=debtor.id,
            installment_id=charge.installment_id,
            charge_key=charge.idempotency_key,
            kind="card",
        ),
    }
    return _deliver(client, "payment_intent.succeeded", intent)


def test_a_refunded_instalment_charge_says_refunded(client, db, gateway):
    debtor, invoice, plan, charge = _card_instalment(db, "pi_instalment_refunded")

    answer = _deliver(
        client, "refund.created", refund("pi_instalment_refunded", amount=2000, refund_id="re_i")
    )

    assert answer.json()["outcome"] == "payment_refunded"
    db.refresh(charge)
    db.refresh(plan)
    assert (charge.status, charge.reversed_ref) == ("refunded", "re_i")
    assert charge.reversed_at is not None and charge.failure_code is None
    assert plan.installments[0].status == "due"
    db.refresh(invoice)
    assert (invoice.paid_minor, invoice.status) == (0, "disputed")  # held for a collector
    assert charge_reversals(db, [plan]) == {charge.installment_id: "refunded"}
    assert charge_failures(db, [plan]) == {}
    late = _late_success(client, debtor, charge)
    assert late.json()["outcome"] == "already_recorded"
    db.refresh(charge)
    assert charge.status == "refunded"


def test_a_lost_card_dispute_on_an_instalment_charge_says_disputed_lost_once(client, db, gateway):
    debtor, invoice, plan, charge = _card_instalment(db, "pi_instalment_disputed")
    dispute = StripeFake.dispute("pi_instalment_disputed", amount=2000, dispute_id="du_lost")
    _deliver(client, "charge.dispute.created", dispute)
    db.refresh(charge)
    assert charge.status == "succeeded"  # a card dispute moves nothing until it is decided

    lost = _deliver(client, "charge.dispute.closed", dict(dispute, status="lost"))

    assert lost.json()["outcome"] == "payment_reversed"
    db.refresh(charge)
    db.refresh(plan)
    assert (charge.status, charge.reversed_ref) == ("disputed_lost", "du_lost")
    assert plan.installments[0].status == "due"
    db.refresh(invoice)
    assert (invoice.paid_minor, invoice.status) == (0, "open")
    assert charge_reversals(db, [plan]) == {charge.installment_id: "disputed_lost"}
    stamp = charge.reversed_at
    events = select(AuditEvent).where(AuditEvent.action == "installment.charge_disputed_lost")
    (event,) = db.scalars(events).all()
    assert (event.details["ref"], event.details["charge_id"]) == ("du_lost", charge.id)

    replay = _deliver(client, "charge.dispute.closed", dict(dispute, status="lost"))
    late = _late_success(client, debtor, charge)
    refunded_after = _deliver(
        client, "refund.created", refund("pi_instalment_disputed", amount=2000)
    )

    assert replay.json()["outcome"] == "already_reversed"
    assert late.json()["outcome"] == "already_recorded"
    assert refunded_after.json()["outcome"] == "nothing_left_to_refund"
    db.refresh(charge)
    assert (charge.status, charge.reversed_ref, charge.reversed_at) == (
        "disputed_lost",
        "du_lost",
        stamp,
    )
    assert len(db.scalars(events).all()) == 1


def test_a_refunded_debit_still_counts_as_settled_on_the_dashboard(client, db, gateway):
    """The bank paid the debit; the creditor gave the money back later: not a failed debit."""
    from relance.dashboard.metrics import debit_failures

    _card_instalment(db, "pi_debit_refunded", kind="sepa_debit")
    since = datetime(2000, 1, 1, tzinfo=UTC)
    assert debit_failures(db, since=since) == (1, 0)

    _deliver(client, "refund.created", refund("pi_debit_refunded", amount=2000))

    assert debit_failures(db, since=since) == (1, 0)


# A refund that reopens a plan instalment: the plan's own follow-ups (reminder the day before,
# off-session charge, "missed") ask for it, not the dunning planner, so the hold must reach them.

PLAN_DUE = TODAY + timedelta(days=2)  # a Thursday: its reminder goes on the Wednesday


def _pass(db, day):
    """A follow-up pass at 11:00 Paris time on `day` (a weekday: inside the contact window)."""
    return run_followups(db, day, now=datetime.combine(day, clock(10, 0), UTC))


def _linked_instalment(db, intent, *, first_due=PLAN_DUE, invoices=None):
    """A plan of two 20 € instalments over one 40 € invoice (or `invoices`), its first paid by
    card through its link (`intent`), and a card kept on file for the plan (the sandbox's)."""
    debtor = make_debtor(db, channels=("sms",))
    if invoices is None:
        invoices = [make_invoice(db, debtor, 4000, due=TODAY - timedelta(days=40))]
    else:
        invoices = [make_invoice(db, debtor, amount, **columns) for amount, columns in invoices]
    plan = make_plan(db, debtor, [2000, 2000], first_due=first_due, invoices=invoices)
    first = plan.installments[0]
    record_payment(
        db,
        debtor_id=debtor.id,
        amount_minor=2000,
        currency="EUR",
        method="card",
        provider="stripe",
        provider_ref=intent,
        installment_id=first.id,
        thank=False,
    )
    assert first.status == "paid"
    card = make_mandate(
        db, debtor, plan, kind="card", payment_method_ref=card_method_ref("4242424242424242")
    )
    return debtor, invoices, plan, card


def _refunded(client, db, intent):
    """The creditor refunds the 20 € of `intent` from Stripe's dashboard (signed webhook); the
    test's session then reads what the request wrote."""
    answer = _deliver(client, "refund.created", refund(intent, amount=2000))
    db.expire_all()
    return answer


def _hold_of(db, debtor):
    (hold,) = db.scalars(select(Dispute).where(Dispute.debtor_id == debtor.id)).all()
    return hold


def test_a_refunded_instalment_is_not_charged_reminded_nor_missed_until_a_collector_decides(
    client, db, gateway, sandbox_payments
):
    debtor, (invoice,), plan, _ = _linked_instalment(db, "pi_plan_link")
    first = plan.installments[0]
    gateway.sent.clear()

    answer = _refunded(client, db, "pi_plan_link")

    assert answer.json()["outcome"] == "payment_refunded"
    hold = _hold_of(db, debtor)
    assert (first.status, first.paid_minor, first.hold_id) == ("due", 0, hold.id)
    assert (hold.reason, hold.invoice_id, invoice.status) == ("refunded", invoice.id, "disputed")
    (task,) = [t for t in _tasks(db, debtor.id) if t.details["reason"] == "payment_refunded"]
    assert task.details["installment_ids"] == [first.id]
    assert task.details["dispute_ids"] == [hold.id]

    # The day before its date, its date (the card on file would be charged), and long after
    # (it would be missed, a message sent and the plan one step from broken): nothing.
    for day in (PLAN_DUE - timedelta(days=1), PLAN_DUE, PLAN_DUE + timedelta(days=6)):
        report = _pass(db, day)
        assert (report.installment_reminders, report.charged, report.charge_failures) == (
            [],
            [],
            [],
        )
        assert report.missed_installments == []
    assert first.status == "due" and charges_of(db, first) == []
    assert gateway.sent == []
    assert plan.status == "active"

    # Still owed: the instalment is due again, and the card kept for the plan pays it.
    decide_dispute(db, hold, upheld=False, note="refunded by mistake", actor="collector:ann")
    assert task.status == "done"
    report = _pass(db, PLAN_DUE + timedelta(days=7))
    assert report.charged == [first.id]
    assert first.status == "paid"


def test_a_refunded_instalment_charge_is_charged_again_only_once_the_hold_is_rejected(
    client, db, gateway, sandbox_payments
):
    """The charge the creditor refunded does not count as the instalment's charge any more."""
    debtor, _, plan, charge = _card_instalment(db, "pi_charge_held")
    plan.installments[0].due_date = PLAN_DUE
    card = make_mandate(
        db, debtor, plan, kind="card", payment_method_ref=card_method_ref("4242424242424242")
    )
    first = plan.installments[0]
    gateway.sent.clear()

    _refunded(client, db, "pi_charge_held")
    held = [_pass(db, day) for day in (PLAN_DUE - timedelta(days=1), PLAN_DUE + timedelta(6))]

    assert [r.installment_reminders for r in held] == [[], []]
    assert [r.missed_installments for r in held] == [[], []]
    assert [(r.charged, r.charge_failures) for r in held] == [([], [])] * 2
    assert gateway.sent == []
    assert charge.status == "refunded"

    decide_dispute(db, _hold_of(db, debtor), upheld=False, note="owed", actor="collector:ann")
    report = _pass(db, PLAN_DUE + timedelta(days=7))

    assert report.charged == [first.id]
    (refunded, again) = charges_of(db, first)
    assert (refunded.status, again.status, again.attempt) == ("refunded", "succeeded", 2)
    assert again.saved_method_id == card.id


def test_a_rejected_hold_gives_the_grace_days_from_the_decision(
    client, db, gateway, sandbox_payments
):
    """Its date may be weeks past when the collector decides: the debtor is not told it was
    missed the next hour, for money the creditor had given back to them."""
    debtor, _, plan, card = _linked_instalment(db, "pi_plan_grace")
    first = plan.installments[0]
    _refunded(client, db, "pi_plan_grace")
    card.status = "revoked"  # no card any more: a missed instalment is what would follow
    hold = _hold_of(db, debtor)
    gateway.sent.clear()
    decide_dispute(db, hold, upheld=False, note="still owed", actor="collector:ann")
    decided = PLAN_DUE + timedelta(days=20)  # Wednesday 1 April
    hold.resolved_at = datetime.combine(decided, clock(9), UTC)

    soon = _pass(db, decided + timedelta(days=1))
    later = _pass(db, decided + timedelta(days=6))

    assert soon.missed_installments == []
    assert later.missed_installments == [first.id]
    assert len(gateway.texts_for(debtor)) == 1  # the "missed" message, once


def test_an_upheld_hold_asks_the_plan_no_more_than_its_invoices_owe(
    client, db, gateway, sandbox_payments
):
    """Over two invoices, the first paid by the refunded instalment: upheld, that invoice is
    cancelled; the refunded instalment gives up what it asked, the other stays due."""
    debtor, (first_invoice, second_invoice), plan, _ = _linked_instalment(
        db,
        "pi_plan_upheld",
        invoices=[
            (2000, {"due": TODAY - timedelta(days=60)}),
            (2000, {"due": TODAY - timedelta(days=30)}),
        ],
    )
    first, second = plan.installments
    _refunded(client, db, "pi_plan_upheld")
    hold = _hold_of(db, debtor)
    assert hold.invoice_id == first_invoice.id and first.hold_id == hold.id

    decide_dispute(db, hold, upheld=True, note="goodwill gesture", actor="collector:ann")

    assert first_invoice.status == "cancelled" and second_invoice.status == "open"
    assert (first.amount_minor, first.paid_minor, first.status) == (0, 0, "paid")
    assert (second.amount_minor, second.status) == (2000, "due")
    assert (plan.status, plan.total_minor) == ("active", 2000)
    (waived,) = db.scalars(select(AuditEvent).where(AuditEvent.action == "installment.waived"))
    assert (waived.entity_id, waived.details["amount_minor"]) == (str(first.id), 2000)
    gateway.sent.clear()
    report = _pass(db, PLAN_DUE + timedelta(days=6))
    assert report.missed_installments == [] and report.charged == []


def test_an_upheld_hold_completes_a_plan_left_with_nothing_to_ask(
    client, db, gateway, sandbox_payments
):
    """Its one invoice cancelled, the plan has nothing left to collect: neither the refunded
    instalment nor the next one is charged or reminded."""
    debtor, (invoice,), plan, _ = _linked_instalment(db, "pi_plan_nothing_left")
    _refunded(client, db, "pi_plan_nothing_left")

    decide_dispute(db, _hold_of(db, debtor), upheld=True, note="order cancelled", actor="ann")

    assert invoice.status == "cancelled"
    assert plan.status == "completed" and plan.total_minor == 0
    assert [(i.amount_minor, i.status) for i in plan.installments] == [(0, "paid"), (0, "paid")]
    gateway.sent.clear()
    for day in (PLAN_DUE, PLAN_DUE + timedelta(days=29), PLAN_DUE + timedelta(days=40)):
        report = _pass(db, day)
        assert (report.installment_reminders, report.charged, report.missed_installments) == (
            [],
            [],
            [],
        )
    assert gateway.sent == []


def test_an_instalment_paid_alone_is_held_by_its_plans_invoice_not_the_whole_account(
    client, db, gateway, sandbox_payments
):
    """The plan's invoice was cancelled (a dispute upheld) before the instalment was paid: the
    payment went to the instalment alone and reopened no invoice, so it used to be held by
    nothing. The hold names the plan's invoice: one decision, and the debtor's other invoice
    is dunned as before."""
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 4000, due=TODAY - timedelta(days=40), status="cancelled")
    plan = make_plan(db, debtor, [2000, 2000], first_due=PLAN_DUE, invoices=[invoice])
    first = plan.installments[0]
    record_payment(
        db,
        debtor_id=debtor.id,
        amount_minor=2000,
        currency="EUR",
        method="card",
        provider="stripe",
        provider_ref="pi_alone",
        installment_id=first.id,
        thank=False,
    )
    other = make_invoice(db, debtor, 9000, due=TODAY - timedelta(days=20))
    make_mandate(
        db, debtor, plan, kind="card", payment_method_ref=card_method_ref("4242424242424242")
    )
    gateway.sent.clear()

    answer = _refunded(client, db, "pi_alone")

    assert answer.json()["outcome"] == "payment_refunded"
    hold = _hold_of(db, debtor)
    assert (hold.invoice_id, first.hold_id, first.status) == (invoice.id, hold.id, "due")
    (task,) = [t for t in _tasks(db, debtor.id) if t.details["reason"] == "payment_refunded"]
    assert (task.details["invoice_ids"], task.details["dispute_ids"]) == ([], [hold.id])
    assert task.details["installment_ids"] == [first.id]
    assert _skip(db, other) is None  # not a hold on the whole account
    report = _pass(db, PLAN_DUE)
    assert report.charged == [] and gateway.sent == []

    # Upheld, the invoice was already cancelled: no second cancellation in the accounts.
    decide_dispute(db, hold, upheld=True, note="not owed", actor="collector:ann")
    assert invoice.status == "cancelled"
    today = datetime.now(UTC).date()
    lines = journal(db, today - timedelta(days=1), today + timedelta(days=1))
    assert [line for line in lines if line.type == "cancellation"] == []
