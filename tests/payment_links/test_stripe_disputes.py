"""`charge.dispute.created` / `charge.dispute.closed` through the signed Stripe webhook, with the
Dispute objects of the Stripe fake: a SEPA debit's dispute (the debtor's refund request) reverses
the payment at once by the late-failure path; a card's opens a collector task and reverses only
when lost; replays change nothing; unknown or malformed disputes are 4xx and store nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from payment_links.service import charge_metadata
from relance.db.models import AuditEvent, Payment, Task, WebhookEvent
from relance.followups import charges
from relance.followups.service import run_followups
from relance.ledger.models import InstallmentCharge, SavedPaymentMethod
from relance.ledger.service import record_payment
from relance.outbox.models import OutboxEvent
from tests.factories import make_debtor, make_invoice, make_plan, make_promise
from tests.support.stripe_fake import StripeFake

SECRET = "whsec_test_secret"
TODAY = date(2026, 3, 10)  # a Tuesday


def _deliver(client, kind, dispute, *, event_id=None, secret=SECRET):
    payload, header = StripeFake.signed(StripeFake.event(kind, dispute, event_id=event_id), secret)
    return client.post("/stripe/webhook", content=payload, headers={"Stripe-Signature": header})


def _sepa_debit(db):
    """A plan installment debited by SEPA, not settled yet (a processing InstallmentCharge)."""
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 4000, due=TODAY - timedelta(days=40))
    plan = make_plan(
        db, debtor, [2000, 2000], first_due=TODAY + timedelta(days=20), invoices=[invoice]
    )
    saved = SavedPaymentMethod(
        debtor_id=debtor.id,
        plan_id=plan.id,
        provider="stripe",
        kind="sepa_debit",
        payment_method_ref="pm_sepa_disputed",
        mandate_ref="mandate_disputed",
    )
    db.add(saved)
    db.flush()
    charge = InstallmentCharge(
        installment_id=plan.installments[0].id,
        saved_method_id=saved.id,
        debtor_id=debtor.id,
        attempt=1,
        kind="sepa_debit",
        provider="stripe",
        amount_minor=2000,
        currency="EUR",
        idempotency_key=f"relance-installment-{plan.installments[0].id}-attempt-1",
        provider_ref="pi_sepa_disputed",
        status=charges.PROCESSING,
    )
    db.add(charge)
    db.flush()
    return debtor, invoice, plan, charge


def _card_payment(db, amount=4000):
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, amount, due=TODAY - timedelta(days=40))
    outcome = record_payment(
        db,
        debtor_id=debtor.id,
        amount_minor=amount,
        currency="EUR",
        method="card",
        provider="stripe",
        provider_ref="pi_card_disputed",
        thank=False,
    )
    return debtor, invoice, outcome.payment


def _count(db, model):
    return db.scalar(select(func.count()).select_from(model))


def test_a_sepa_refund_request_reverses_the_debit_once(client, db, gateway, sandbox_payments):
    debtor, invoice, plan, charge = _sepa_debit(db)
    promise = make_promise(
        db,
        debtor,
        2000,
        TODAY - timedelta(days=5),
        created_at=datetime.now(UTC) - timedelta(days=10),
    )
    # Settled as `payment_intent.succeeded` settles it: the debit keeps the promise.
    charges.settled(db, charge, amount_minor=2000, currency="EUR", actor="stripe:webhook")
    payment = db.scalars(select(Payment).where(Payment.provider_ref == "pi_sepa_disputed")).one()
    assert invoice.paid_minor == 2000 and plan.installments[0].status == "paid"
    assert promise.status == "kept"
    gateway.sent.clear()  # the thanks
    dispute = StripeFake.dispute(
        "pi_sepa_disputed", amount=2000, method="sepa_debit", status="lost", reason="general"
    )

    answer = _deliver(client, "charge.dispute.created", dispute, event_id="evt_sepa_dispute")

    assert answer.status_code == 200 and answer.json()["outcome"] == "debit_returned"
    db.refresh(payment)
    db.refresh(invoice)
    db.refresh(charge)
    db.refresh(plan.installments[0])
    assert payment.reversed_at is not None and payment.reversal_reason == "dispute:general"
    assert (charge.status, charge.failure_code) == ("failed", "dispute:general")
    assert invoice.paid_minor == 0 and invoice.status == "open"
    assert plan.installments[0].status == "due"
    (task,) = db.scalars(select(Task).where(Task.debtor_id == debtor.id)).all()
    assert task.details["reason"] == "charge_failed" and task.details["late"] is True
    assert len(gateway.sent) == 1  # utter_installment_debit_failed, with a payment link
    db.refresh(promise)
    assert promise.status == "pending"

    again = _deliver(client, "charge.dispute.created", dispute, event_id="evt_sepa_dispute")
    assert again.json() == {"received": True, "duplicate": True}
    closed = _deliver(client, "charge.dispute.closed", dispute, event_id="evt_sepa_closed")
    assert closed.json()["outcome"] == "already_reversed"
    assert len(db.scalars(select(Task).where(Task.debtor_id == debtor.id)).all()) == 1
    assert len(gateway.sent) == 1
    reversals = select(func.count(OutboxEvent.id)).where(OutboxEvent.type == "payment.reversed")
    assert db.scalar(reversals) == 1

    # The promise the debit looked like keeping is broken by the next follow-up pass.
    report = run_followups(db, TODAY, now=datetime.combine(TODAY, time(10, 0), UTC))
    assert report.broken_promises == [promise.id] and promise.status == "broken"


def test_a_card_dispute_opens_a_task_and_a_won_one_closes_it(client, db, gateway):
    debtor, invoice, payment = _card_payment(db)
    dispute = StripeFake.dispute("pi_card_disputed", amount=4000, reason="fraudulent")

    opened = _deliver(client, "charge.dispute.created", dispute)
    assert opened.json()["outcome"] == "dispute_task_opened"
    db.refresh(payment)
    db.refresh(invoice)
    assert payment.reversed_at is None and invoice.status == "paid"
    (task,) = db.scalars(select(Task).where(Task.debtor_id == debtor.id)).all()
    assert task.status == "open" and task.details["reason"] == "payment_disputed"
    assert (task.details["dispute_ref"], task.details["partial"]) == (dispute["id"], False)
    # Another delivery of the same dispute (a new event id): still one task.
    assert _deliver(client, "charge.dispute.created", dispute).json()["outcome"] == (
        "dispute_task_exists"
    )

    won = _deliver(client, "charge.dispute.closed", dict(dispute, status="won"))
    assert won.json()["outcome"] == "dispute_closed"
    db.refresh(task)
    db.refresh(payment)
    assert task.status == "done" and task.details["outcome"] == "won"
    assert payment.reversed_at is None and invoice.status == "paid"
    assert len(db.scalars(select(Task).where(Task.debtor_id == debtor.id)).all()) == 1


def test_a_lost_card_dispute_reverses_the_payment(client, db, gateway):
    debtor, invoice, payment = _card_payment(db)
    dispute = StripeFake.dispute("pi_card_disputed", amount=4000)
    _deliver(client, "charge.dispute.created", dispute)

    lost = _deliver(client, "charge.dispute.closed", dict(dispute, status="lost"))

    assert lost.status_code == 200 and lost.json()["outcome"] == "payment_reversed"
    db.refresh(payment)
    db.refresh(invoice)
    assert payment.reversal_reason == "dispute_lost:general"
    assert invoice.status == "open" and invoice.paid_minor == 0
    (task,) = db.scalars(select(Task).where(Task.debtor_id == debtor.id)).all()
    assert task.status == "open" and task.details["outcome"] == "lost"
    reversed_events = db.scalars(
        select(OutboxEvent).where(OutboxEvent.type == "payment.reversed")
    ).all()
    assert [e.data["payment_id"] for e in reversed_events] == [payment.id]
    replay = _deliver(client, "charge.dispute.closed", dict(dispute, status="lost"))
    assert replay.json()["outcome"] == "already_reversed"


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"payment_intent": "pi_nobody_knows"}, 404, "unknown_payment"),
        ({"payment_intent": None}, 400, "malformed_event"),
        ({"status": "resolved_by_magic"}, 400, "malformed_event"),
        ({"amount": "4000"}, 400, "malformed_event"),
        ({"amount": 4001}, 400, "malformed_event"),
        ({"currency": "usd"}, 400, "malformed_event"),
        ({"object": "charge"}, 400, "malformed_event"),
        ({"reason": None}, 400, "malformed_event"),
    ],
)
def test_unknown_or_malformed_disputes_are_refused_and_store_nothing(
    client, db, gateway, change, status, code
):
    _, invoice, payment = _card_payment(db)
    before = (_count(db, WebhookEvent), _count(db, Task), _count(db, AuditEvent))
    dispute = dict(StripeFake.dispute("pi_card_disputed", amount=4000), **change)

    answer = _deliver(client, "charge.dispute.created", dispute)

    assert answer.status_code == status and answer.json()["code"] == code
    assert (_count(db, WebhookEvent), _count(db, Task), _count(db, AuditEvent)) == before
    db.refresh(payment)
    assert payment.reversed_at is None and invoice.status == "paid"


def test_a_forged_closed_dispute_is_refused_and_stores_nothing(client, db, gateway):
    _, invoice, payment = _card_payment(db)
    dispute = StripeFake.dispute("pi_card_disputed", amount=4000, status="lost")
    before = (_count(db, WebhookEvent), _count(db, AuditEvent))

    forged = _deliver(client, "charge.dispute.closed", dispute, secret="whsec_forger")

    assert forged.status_code == 400 and forged.json()["code"] == "invalid_signature"
    assert (_count(db, WebhookEvent), _count(db, AuditEvent)) == before
    db.refresh(payment)
    assert payment.reversed_at is None and invoice.status == "paid"


# Stripe's published Dispute statuses (API reference, `dispute.status`).
OPEN = ("warning_needs_response", "warning_under_review", "needs_response", "under_review")
FINAL = ("won", "lost", "warning_closed", "prevented")


def _audit(db, action):
    return db.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


@pytest.mark.parametrize(
    ("status", "outcome", "task_status", "reversed_"),
    [
        ("warning_needs_response", "dispute_task_opened", "open", False),
        ("warning_under_review", "dispute_task_opened", "open", False),
        ("needs_response", "dispute_task_opened", "open", False),
        ("under_review", "dispute_task_opened", "open", False),
        ("won", "dispute_closed", None, False),
        ("warning_closed", "dispute_closed", None, False),
        ("prevented", "dispute_closed", None, False),
        ("lost", "payment_reversed", "open", True),
    ],
)
def test_a_card_dispute_created_in_each_published_status(
    client, db, gateway, status, outcome, task_status, reversed_
):
    """`charge.dispute.created` may carry any status: an open one waits for the decision with a
    task; one already decided is acted on at once (lost: task and reversal; the others leave
    nothing to do). Never a 4xx, and each recorded."""
    debtor, invoice, payment = _card_payment(db)
    dispute = StripeFake.dispute("pi_card_disputed", amount=4000, status=status)

    answer = _deliver(client, "charge.dispute.created", dispute)

    assert answer.status_code == 200 and answer.json()["outcome"] == outcome
    db.refresh(payment)
    db.refresh(invoice)
    assert (payment.reversed_at is not None) is reversed_
    assert invoice.status == ("open" if reversed_ else "paid")
    tasks = db.scalars(select(Task).where(Task.debtor_id == debtor.id)).all()
    assert [t.status for t in tasks] == ([task_status] if task_status else [])
    (event,) = _audit(db, "payment.disputed")
    assert (event.details["dispute_ref"], event.details["status"]) == (dispute["id"], status)


@pytest.mark.parametrize(
    ("status", "outcome", "task_status", "reversed_"),
    [
        ("warning_needs_response", "dispute_still_open", "open", False),
        ("warning_under_review", "dispute_still_open", "open", False),
        ("needs_response", "dispute_still_open", "open", False),
        ("under_review", "dispute_still_open", "open", False),
        ("won", "dispute_closed", "done", False),
        ("warning_closed", "dispute_closed", "done", False),
        ("prevented", "dispute_closed", "done", False),
        ("lost", "payment_reversed", "open", True),
    ],
)
def test_a_card_dispute_closed_in_each_published_status(
    client, db, gateway, status, outcome, task_status, reversed_
):
    """`charge.dispute.closed`: a final status decides the dispute; one that is not final (Stripe
    documents none, but it is a published status) is recorded as an update, answered 200, and
    the dispute stays open. Nothing is refused."""
    debtor, _invoice, payment = _card_payment(db)
    dispute = StripeFake.dispute("pi_card_disputed", amount=4000, status="needs_response")
    _deliver(client, "charge.dispute.created", dispute)

    answer = _deliver(client, "charge.dispute.closed", dict(dispute, status=status))

    assert answer.status_code == 200 and answer.json()["outcome"] == outcome
    db.refresh(payment)
    assert (payment.reversed_at is not None) is reversed_
    (task,) = db.scalars(select(Task).where(Task.debtor_id == debtor.id)).all()
    assert task.status == task_status
    if status in OPEN:
        (event,) = _audit(db, "payment.dispute_updated")
        assert task.details["dispute_status"] == status and "outcome" not in task.details
    else:
        (event,) = _audit(db, "payment.dispute_closed")
        assert task.details["outcome"] == status
    assert (event.details["dispute_ref"], event.details["status"]) == (dispute["id"], status)


@pytest.mark.parametrize("status", OPEN + FINAL)
def test_a_dispute_update_in_each_published_status_is_recorded_and_moves_no_money(
    client, db, gateway, status
):
    """`charge.dispute.updated` (an inquiry escalated, evidence under review, or the status
    change that comes with the closing): recorded, the task shows it, the ledger is untouched
    (`charge.dispute.closed` decides)."""
    debtor, invoice, payment = _card_payment(db)
    dispute = StripeFake.dispute("pi_card_disputed", amount=4000, status="warning_needs_response")
    _deliver(client, "charge.dispute.created", dispute)

    answer = _deliver(client, "charge.dispute.updated", dict(dispute, status=status))
    body = answer.json()

    assert answer.status_code == 200 and body["outcome"] == "dispute_updated"
    db.refresh(payment)
    db.refresh(invoice)
    assert payment.reversed_at is None and invoice.status == "paid"
    (task,) = db.scalars(select(Task).where(Task.debtor_id == debtor.id)).all()
    assert (task.status, task.details["dispute_status"]) == ("open", status)
    (event,) = _audit(db, "payment.dispute_updated")
    assert (event.details["dispute_ref"], event.details["status"]) == (dispute["id"], status)


@pytest.mark.parametrize("status", ("won", "warning_closed", "prevented"))
def test_a_sepa_dispute_created_already_decided_for_us_takes_nothing_back(
    client, db, gateway, sandbox_payments, status
):
    debtor, invoice, _plan, charge = _sepa_debit(db)
    charges.settled(db, charge, amount_minor=2000, currency="EUR", actor="stripe:webhook")
    gateway.sent.clear()  # the thanks
    dispute = StripeFake.dispute(
        "pi_sepa_disputed", amount=2000, method="sepa_debit", status=status
    )

    answer = _deliver(client, "charge.dispute.created", dispute)

    assert answer.status_code == 200 and answer.json()["outcome"] == "dispute_closed"
    for row in (invoice, charge):
        db.refresh(row)
    assert (invoice.paid_minor, charge.status) == (2000, "succeeded")
    assert db.scalars(select(Task).where(Task.debtor_id == debtor.id)).all() == []
    assert gateway.sent == [] and len(_audit(db, "payment.disputed")) == 1


@pytest.mark.parametrize("kind", ["charge.dispute.created", "charge.dispute.updated"])
def test_a_status_stripe_does_not_publish_is_still_refused(client, db, gateway, kind):
    _, _invoice, _payment = _card_payment(db)
    before = (_count(db, WebhookEvent), _count(db, AuditEvent), _count(db, Task))
    dispute = StripeFake.dispute("pi_card_disputed", amount=4000, status="resolved_by_magic")

    answer = _deliver(client, kind, dispute)

    assert answer.status_code == 400 and "status" in answer.json()["detail"]
    assert (_count(db, WebhookEvent), _count(db, AuditEvent), _count(db, Task)) == before


def _reversals(db):
    return db.scalars(select(OutboxEvent).where(OutboxEvent.type == "payment.reversed")).all()


def test_a_lost_card_dispute_for_part_of_the_payment_reverses_only_that_part(client, db, gateway):
    """Stripe's `dispute.amount` can be less than the charge (part of an order disputed): losing
    it takes back that amount only, once for the dispute."""
    debtor, invoice, payment = _card_payment(db)  # 40 € paying F in full
    dispute = StripeFake.dispute("pi_card_disputed", amount=1500, reason="product_unacceptable")
    _deliver(client, "charge.dispute.created", dispute)
    (task,) = db.scalars(select(Task).where(Task.debtor_id == debtor.id)).all()
    assert task.details["partial"] is True

    lost = _deliver(client, "charge.dispute.closed", dict(dispute, status="lost"))

    assert lost.json()["outcome"] == "payment_reversed"
    db.refresh(payment)
    db.refresh(invoice)
    assert (invoice.paid_minor, invoice.balance_minor, invoice.status) == (2500, 1500, "open")
    assert sum(a.amount_minor for a in payment.allocations) == 2500
    assert (payment.reversed_minor, payment.reversal_reason) == (
        1500,
        "dispute_lost:product_unacceptable",
    )
    assert [(e.data["amount_minor"], e.data["partial"]) for e in _reversals(db)] == [(1500, True)]
    # The same dispute closed again (another event id) takes nothing more.
    replay = _deliver(client, "charge.dispute.closed", dict(dispute, status="lost"))
    assert replay.json()["outcome"] == "already_reversed"
    db.refresh(invoice)
    assert invoice.paid_minor == 2500 and len(_reversals(db)) == 1


def test_a_sepa_refund_request_for_part_of_the_debit_reverses_only_its_amount(
    client, db, gateway, sandbox_payments
):
    debtor, invoice, plan, charge = _sepa_debit(db)
    charges.settled(db, charge, amount_minor=2000, currency="EUR", actor="stripe:webhook")
    gateway.sent.clear()  # the thanks
    first = plan.installments[0]
    dispute = StripeFake.dispute("pi_sepa_disputed", amount=800, method="sepa_debit", status="lost")

    answer = _deliver(client, "charge.dispute.created", dispute)

    assert answer.json()["outcome"] == "debit_returned"
    payment = db.scalars(select(Payment).where(Payment.provider_ref == "pi_sepa_disputed")).one()
    for row in (payment, invoice, charge, first):
        db.refresh(row)
    assert (invoice.paid_minor, invoice.status) == (1200, "open")
    assert (first.paid_minor, first.status) == (1200, "partial")
    assert (payment.reversed_minor, charge.status) == (800, "failed")
    (task,) = db.scalars(select(Task).where(Task.debtor_id == debtor.id)).all()
    assert (task.details["reason"], task.details["dispute_ref"]) == ("charge_failed", dispute["id"])
    (text,) = gateway.texts_for(debtor)
    assert "8,00" in text  # the debtor is asked for what came back, not the whole debit

    closed = _deliver(client, "charge.dispute.closed", dispute)
    assert closed.json()["outcome"] == "already_reversed"
    db.refresh(invoice)
    assert invoice.paid_minor == 1200 and len(_reversals(db)) == 1


@pytest.mark.parametrize("disputed", [2000, 800])
def test_a_sepa_dispute_closed_won_records_the_debit_again_once(
    client, db, gateway, sandbox_payments, disputed
):
    """Past eight weeks a SEPA debtor can only claim the debit was unauthorised; Stripe sends
    their bank the mandate and the bank may cancel the dispute: `won`, the money is back. What
    the dispute took back is recorded again, once; the charge_failed task is closed with it."""
    debtor, invoice, plan, charge = _sepa_debit(db)
    charges.settled(db, charge, amount_minor=2000, currency="EUR", actor="stripe:webhook")
    first = plan.installments[0]
    dispute = StripeFake.dispute(
        "pi_sepa_disputed",
        amount=disputed,
        method="sepa_debit",
        status="under_review",
        reason="debit_not_authorized",
    )
    assert _deliver(client, "charge.dispute.created", dispute).json()["outcome"] == "debit_returned"
    db.refresh(invoice)
    db.refresh(charge)
    assert invoice.paid_minor == 2000 - disputed and charge.status == "failed"
    texts = len(gateway.texts_for(debtor))

    won = _deliver(client, "charge.dispute.closed", dict(dispute, status="won"))

    assert won.status_code == 200 and won.json()["outcome"] == "payment_recorded_again"
    for row in (invoice, first):
        db.refresh(row)
    assert (invoice.paid_minor, first.paid_minor, first.status) == (2000, 2000, "paid")
    again = db.scalars(select(Payment).where(Payment.provider_ref == dispute["id"])).one()
    assert (again.amount_minor, again.method, again.reversed_minor) == (disputed, "sepa_debit", 0)
    (task,) = db.scalars(select(Task).where(Task.debtor_id == debtor.id)).all()
    assert (task.status, task.details["outcome"]) == ("done", "won")
    assert task.details["payment_recorded_again"] == again.id
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "payment.dispute_won")).one()
    assert (event.details["dispute_ref"], event.details["amount_minor"]) == (
        dispute["id"],
        disputed,
    )
    assert len(gateway.texts_for(debtor)) == texts  # nobody thanks the debtor for it

    replay = _deliver(client, "charge.dispute.closed", dict(dispute, status="won"))
    assert replay.json()["outcome"] == "already_recorded_again"
    db.refresh(invoice)
    assert invoice.paid_minor == 2000
    assert db.scalar(select(func.count(Payment.id)).where(Payment.debtor_id == debtor.id)) == 2


def _reinstated_events(db):
    return db.scalars(
        select(AuditEvent).where(AuditEvent.action == "installment.charge_reinstated")
    ).all()


def test_a_sepa_dispute_closed_won_reinstates_its_charge_once(
    client, db, gateway, sandbox_payments
):
    """The money is back and counted on the installment: the charge row must not keep saying
    `failed` (the portal's failure notice, the console's charges and the exports read it). It
    becomes `reinstated` with the dispute id; the return's code and date stay; a replay of the
    same `won` (same event, or a new event id) changes nothing twice."""
    from relance.dashboard.metrics import debit_failures
    from relance.portal.service import charge_failures

    debtor, invoice, plan, charge = _sepa_debit(db)
    charges.settled(db, charge, amount_minor=2000, currency="EUR", actor="stripe:webhook")
    dispute = StripeFake.dispute(
        "pi_sepa_disputed", amount=2000, method="sepa_debit", reason="debit_not_authorized"
    )
    _deliver(client, "charge.dispute.created", dispute)
    db.refresh(charge)
    db.refresh(plan)
    assert charge.status == "failed" and set(charge_failures(db, [plan])) == {charge.installment_id}
    since = datetime(2000, 1, 1, tzinfo=UTC)
    assert debit_failures(db, since=since) == (1, 1)

    won = _deliver(client, "charge.dispute.closed", dict(dispute, status="won"), event_id="evt_won")

    assert won.status_code == 200 and won.json()["outcome"] == "payment_recorded_again"
    db.refresh(charge)
    db.refresh(plan)
    assert (charge.status, charge.reinstated_ref) == ("reinstated", dispute["id"])
    assert charge.reinstated_at is not None
    assert (charge.failure_code, charge.failed_at is not None) == (
        "dispute:debit_not_authorized",
        True,
    )
    assert charge_failures(db, [plan]) == {}  # the portal no longer explains a failure
    assert debit_failures(db, since=since) == (1, 0)
    (event,) = _reinstated_events(db)
    assert (event.details["dispute_ref"], event.details["charge_id"]) == (dispute["id"], charge.id)
    stamp = charge.reinstated_at

    same = _deliver(
        client, "charge.dispute.closed", dict(dispute, status="won"), event_id="evt_won"
    )
    other = _deliver(client, "charge.dispute.closed", dict(dispute, status="won"))
    # A late `payment_intent.succeeded` of the debit cannot turn it back into `succeeded`.
    intent = {
        "id": "pi_sepa_disputed",
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
            kind="sepa_debit",
        ),
    }
    late = _deliver(client, "payment_intent.succeeded", intent)

    assert same.json() == {"received": True, "duplicate": True}
    assert other.json()["outcome"] == "already_recorded_again"
    assert late.status_code == 200 and late.json()["outcome"] == "already_recorded"
    db.refresh(charge)
    db.refresh(invoice)
    assert (charge.status, charge.reinstated_at) == ("reinstated", stamp)
    assert len(_reinstated_events(db)) == 1
    assert invoice.paid_minor == 2000
    assert db.scalar(select(func.count(Payment.id)).where(Payment.debtor_id == debtor.id)) == 2
