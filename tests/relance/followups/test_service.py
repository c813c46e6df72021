"""run_followups: reminders the day before, broken promises, missed installments, saved cards."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select

from relance.db.models import AuditEvent, PaymentLink, Task
from relance.disputes.service import REFUNDED, create_dispute
from relance.followups.service import run_followups
from relance.ledger.models import SavedPaymentMethod
from tests.factories import make_debtor, make_invoice, make_plan, make_promise

TODAY = date(2026, 3, 10)  # a Tuesday


def _run(db, day):
    """A pass at 11:00 Paris time on `day` (inside the French contact window on weekdays)."""
    return run_followups(db, day, now=datetime.combine(day, time(10, 0), UTC))


def _links(db, debtor, purpose):
    return db.scalars(
        select(PaymentLink).where(
            PaymentLink.debtor_id == debtor.id, PaymentLink.purpose == purpose
        )
    ).all()


def test_promise_reminder_the_day_before_with_a_link_once(db, gateway, sandbox_payments):
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 9000, due=TODAY - timedelta(days=30))
    promise = make_promise(db, debtor, 4000, TODAY + timedelta(days=1), invoices=[invoice])
    later = make_promise(db, debtor, 1000, TODAY + timedelta(days=5))

    report = _run(db, TODAY)
    again = _run(db, TODAY)

    assert report.promise_reminders == [promise.id] and again.promise_reminders == []
    texts = gateway.texts_for(debtor)
    assert len(texts) == 1 and "40,00" in texts[0] and "http://testserver/pay/" in texts[0]
    (link,) = _links(db, debtor, "promise")
    assert link.amount_minor == 4000 and link.invoice_ids == [invoice.id]
    assert later.status == "pending"


def test_broken_promise_goes_back_into_dunning_with_a_follow_up(db, gateway, sandbox_payments):
    debtor = make_debtor(db, language="en", channels=("sms",))
    invoice = make_invoice(db, debtor, 9000, due=TODAY - timedelta(days=30))
    invoice.dunning_paused_until = TODAY + timedelta(days=20)
    broken = make_promise(db, debtor, 4000, TODAY - timedelta(days=2), invoices=[invoice])
    in_grace = make_promise(db, debtor, 1000, TODAY - timedelta(days=1), invoices=[invoice])

    report = _run(db, TODAY)

    assert report.broken_promises == [broken.id]
    assert broken.status == "broken" and in_grace.status == "pending"
    assert invoice.dunning_paused_until is None
    task = db.scalars(select(Task).where(Task.debtor_id == debtor.id)).one()
    assert task.kind == "followup" and task.details == {
        "reason": "broken_promise",
        "promise_id": broken.id,
    }
    (text,) = gateway.texts_for(debtor)
    assert "What happened?" in text and "/pay/" in text
    assert _run(db, TODAY).broken_promises == []


def test_installment_reminder_with_link_or_card_notice(db, gateway, sandbox_payments):
    debtor, card_debtor = make_debtor(db, channels=("sms",)), make_debtor(db, channels=("sms",))
    plans = []
    for d in (debtor, card_debtor):
        invoice = make_invoice(db, d, 6000, due=TODAY - timedelta(days=40))
        plans.append(
            make_plan(db, d, [3000, 3000], first_due=TODAY + timedelta(days=1), invoices=[invoice])
        )
    db.add(
        SavedPaymentMethod(
            debtor_id=card_debtor.id,
            plan_id=plans[1].id,
            provider="sandbox",
            customer_ref="cus_sandbox_1",
            payment_method_ref="pm_sandbox_1",
        )
    )
    db.flush()

    report = _run(db, TODAY)

    assert sorted(report.installment_reminders) == sorted(
        [plans[0].installments[0].id, plans[1].installments[0].id]
    )
    (text,) = gateway.texts_for(debtor)
    assert "1/2" in text and "/pay/" in text
    (link,) = _links(db, debtor, "installment")
    assert link.installment_id == plans[0].installments[0].id and link.amount_minor == 3000
    (notice,) = gateway.texts_for(card_debtor)
    assert "carte" in notice and "/pay/" not in notice
    assert _run(db, TODAY).installment_reminders == []


def test_missed_installments_then_plan_broken(db, gateway, sandbox_payments):
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 9000, due=TODAY - timedelta(days=90))
    invoice.dunning_paused_until = TODAY + timedelta(days=60)
    plan = make_plan(
        db, debtor, [3000, 3000, 3000], first_due=TODAY - timedelta(days=40), invoices=[invoice]
    )
    first, second, third = plan.installments  # due -40, -10, +20

    report = _run(db, TODAY - timedelta(days=28))
    assert report.missed_installments == [first.id] and first.status == "missed"
    assert plan.status == "active" and invoice.dunning_paused_until is not None

    report = _run(db, TODAY)
    assert report.missed_installments == [second.id] and report.broken_plans == [plan.id]
    assert plan.status == "broken" and third.status == "due"
    assert invoice.dunning_paused_until is None
    assert (
        db.scalar(
            select(func.count(Task.id)).where(Task.debtor_id == debtor.id, Task.kind == "followup")
        )
        == 2
    )
    texts = gateway.texts_for(debtor)
    assert len(texts) == 2 and "n'a pas été réglée" in texts[0] and "prend fin" in texts[1]


def test_a_plan_broken_when_nothing_is_open_is_told_without_a_link(db, gateway, sandbox_payments):
    """Its only invoice is on hold (a refund's dispute, which holds no instalment it did not
    reopen): the broken plan's message goes without a balance link, and the pass goes on (the
    link's "nothing owed" used to end the pass with an error at every run)."""
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 6000, due=TODAY - timedelta(days=90))
    plan = make_plan(
        db, debtor, [3000, 3000], first_due=TODAY - timedelta(days=40), invoices=[invoice]
    )
    create_dispute(db, debtor, reason=REFUNDED, details="re_1", invoice_id=invoice.id)

    report = _run(db, TODAY)

    assert report.broken_plans == [plan.id] and plan.status == "broken"
    texts = gateway.texts_for(debtor)
    assert len(texts) == 2 and "prend fin" in texts[1] and "/pay/" not in texts[1]


def test_sandbox_saved_card_is_charged_once_and_decline_sends_a_link(db, gateway, sandbox_payments):
    ok, ko = make_debtor(db, channels=("sms",)), make_debtor(db, channels=("sms",))
    plans = {}
    for d, method in ((ok, "pm_sandbox_ok"), (ko, "pm_sandbox_decline")):
        invoice = make_invoice(db, d, 4000, due=TODAY - timedelta(days=40))
        plans[d.id] = make_plan(db, d, [2000, 2000], first_due=TODAY, invoices=[invoice])
        db.add(
            SavedPaymentMethod(
                debtor_id=d.id,
                plan_id=plans[d.id].id,
                provider="sandbox",
                customer_ref="cus_sandbox",
                payment_method_ref=method,
            )
        )
    db.flush()

    report = _run(db, TODAY)
    again = _run(db, TODAY)

    assert report.charged == [plans[ok.id].installments[0].id]
    assert report.charge_failures == [plans[ko.id].installments[0].id]
    assert again.charged == [] and again.charge_failures == []
    assert plans[ok.id].installments[0].status == "paid"
    assert plans[ko.id].installments[0].status == "due"
    (failed_text,) = gateway.texts_for(ko)
    assert "n'a pas abouti : votre carte a été refusée par sa banque." in failed_text
    assert "/pay/" in failed_text
    assert db.scalar(
        select(AuditEvent.id).where(
            AuditEvent.action == "installment.charge_failed", AuditEvent.debtor_id == ko.id
        )
    )


def test_on_the_promised_day_the_promised_link_goes_out_once(db, gateway, sandbox_payments):
    debtor = make_debtor(db, channels=("sms",))
    make_invoice(db, debtor, 9000, due=TODAY - timedelta(days=30))
    promise = make_promise(db, debtor, 3000, TODAY)

    report = _run(db, TODAY)
    again = _run(db, TODAY)

    assert report.promise_due_links == [promise.id] and again.promise_due_links == []
    (text,) = gateway.texts_for(debtor)
    assert "30,00" in text and "/pay/" in text
    (link,) = _links(db, debtor, "promise")
    assert link.amount_minor == 3000
    assert promise.status == "pending"


def test_nothing_is_sent_outside_contact_hours_or_during_a_handoff(db, gateway, sandbox_payments):
    from relance.conversations.repository import conversation_for_debtor

    debtor, handed_off = make_debtor(db, channels=("sms",)), make_debtor(db, channels=("sms",))
    for d in (debtor, handed_off):
        make_invoice(db, d, 9000, due=TODAY - timedelta(days=30))
    sunday = date(2026, 3, 15)
    promise = make_promise(db, debtor, 4000, TODAY - timedelta(days=3))
    conversation_for_debtor(db, handed_off).mode = "human"
    other = make_promise(db, handed_off, 4000, TODAY - timedelta(days=3))

    on_sunday = run_followups(db, sunday, now=datetime(2026, 3, 15, 10, 0, tzinfo=UTC))
    at_night = run_followups(db, TODAY, now=datetime(2026, 3, 10, 22, 0, tzinfo=UTC))

    assert on_sunday.broken_promises == [] and at_night.broken_promises == []
    assert set(at_night.deferred_debtor_ids) == {debtor.id, handed_off.id}
    assert promise.status == "pending" and other.status == "pending" and gateway.sent == []
    assert _run(db, TODAY).broken_promises == [promise.id]  # caught up in the window
