"""The debtor's reason for paying late: recorded by action_cannot_pay, used by the reminders."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.late_reasons import ActionCannotPay
from actions.reminders import ActionSendReminder
from relance.db.base import utcnow
from relance.db.models import AuditEvent, LatePaymentReason, PaymentPlan
from relance.policy.service import save_version, seed_document
from tests.actions.conftest import make_tracker, responses, slots_for
from tests.factories import make_message


def _said(owner, conv, message, text: str, **slots):  # type: ignore[no-untyped-def]
    tracker = make_tracker(slots_for(owner, conv, **slots), text=text, intent="cannot_pay")
    tracker.latest_message["metadata"] = {"message_id": str(message.id), "channel": "whatsapp"}
    return tracker


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("je suis au chômage depuis mars", "job_loss"),
        ("I lost my job", "job_loss"),
        ("ma société est en redressement", "insolvency"),
        ("I'm in hospital", "illness"),
        ("cash flow is tight until the end of the month", "cash_flow"),
        ("je ne peux pas payer", "other"),
    ],
)
def test_reason_recorded_with_category_words_and_time(
    db: Session, dispatcher, debtor_setup, text: str, category: str
) -> None:
    owner, conv = debtor_setup
    message = make_message(db, conv, text)
    before = utcnow()
    ActionCannotPay().run(dispatcher, _said(owner, conv, message, text), {})
    reason = db.scalars(select(LatePaymentReason)).one()
    assert (reason.debtor_id, reason.category, reason.words) == (owner.id, category, text)
    assert before <= reason.created_at <= utcnow()
    assert (reason.conversation_id, reason.message_id, reason.channel) == (
        conv.id,
        message.id,
        "whatsapp",
    )
    assert reason.identity_verified is True and reason.language == "fr"
    assert responses(dispatcher) == ["utter_cannot_pay_empathy"]
    audit = db.scalars(select(AuditEvent).where(AuditEvent.action == "late_reason.recorded")).one()
    assert audit.debtor_id == owner.id and audit.details["category"] == category
    assert text not in str(audit.details)  # the words stay on the case, not in the trail


def test_history_kept_and_a_replayed_turn_recorded_once(
    db: Session, dispatcher, debtor_setup
) -> None:
    owner, conv = debtor_setup
    first = make_message(db, conv, "je suis au chômage depuis mars")
    second = make_message(db, conv, "et maintenant je suis à l'hôpital")
    ActionCannotPay().run(dispatcher, _said(owner, conv, first, first.body), {})
    ActionCannotPay().run(dispatcher, _said(owner, conv, first, first.body), {})  # replay
    ActionCannotPay().run(dispatcher, _said(owner, conv, second, second.body), {})
    from relance.late_reasons.service import history, latest

    assert [r.category for r in history(db, owner.id)] == ["illness", "job_loss"]
    assert latest(db, owner.id).words == second.body
    assert responses(dispatcher) == ["utter_cannot_pay_empathy"] * 3


def test_more_of_the_reason_answering_the_plan_offer_is_acknowledged_briefly(
    db: Session, dispatcher, debtor_setup
) -> None:
    # Simulator: "je peux pas tout payer maintenant" -> empathy + "would instalments help?";
    # "la tréso est pas top, un client nous doit de l'argent" got the same two messages again.
    owner, conv = debtor_setup
    first = make_message(db, conv, "je peux pas tout payer maintenant")
    ActionCannotPay().run(dispatcher, _said(owner, conv, first, first.body), {})
    second = make_message(db, conv, "la tréso est pas top, un client nous doit de l'argent")
    tracker = _said(owner, conv, second, second.body)
    tracker.events = [
        {"event": "user", "text": first.body},
        {"event": "action", "name": "action_cannot_pay"},
        {"event": "action", "name": "action_offer_plan"},
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": second.body},
    ]
    ActionCannotPay().run(dispatcher, tracker, {})
    assert responses(dispatcher) == ["utter_cannot_pay_empathy", "utter_cannot_pay_noted"]
    from relance.late_reasons.service import latest

    assert latest(db, owner.id).words == second.body  # the reason is still recorded


def test_unknown_sender_gets_the_empathy_and_nothing_is_stored(db: Session, dispatcher) -> None:
    tracker = make_tracker({"debtor_id": None}, text="I lost my job", intent="cannot_pay")
    ActionCannotPay().run(dispatcher, tracker, {})
    assert db.scalars(select(LatePaymentReason)).first() is None
    assert responses(dispatcher) == ["utter_cannot_pay_empathy"]


def _reminder(dispatcher, owner, conv):  # type: ignore[no-untyped-def]
    tracker = make_tracker(
        slots_for(owner, conv),
        intent="EXTERNAL_reminder",
        entities=[{"entity": "stage", "value": "firm"}],
    )
    return ActionSendReminder().run(dispatcher, tracker, {})


def _followups(events: list[dict]) -> list[str]:
    return [e["name"] for e in events if e.get("event") == "followup"]


def test_hardship_makes_the_next_reminder_offer_a_plan_first(
    db: Session, dispatcher, debtor_setup
) -> None:
    owner, conv = debtor_setup
    assert _followups(_reminder(dispatcher, owner, conv)) == []  # no reason: a plain reminder
    message = make_message(db, conv, "I lost my job")
    ActionCannotPay().run(dispatcher, _said(owner, conv, message, message.body), {})
    assert _followups(_reminder(dispatcher, owner, conv)) == ["action_offer_plan"]


def test_plan_first_follows_the_policy_and_ends_with_a_plan_or_time(
    db: Session, dispatcher, debtor_setup
) -> None:
    owner, conv = debtor_setup
    message = make_message(db, conv, "ma société est en redressement")
    ActionCannotPay().run(dispatcher, _said(owner, conv, message, message.body), {})
    assert _followups(_reminder(dispatcher, owner, conv)) == []  # insolvency: not in plan_first
    document = seed_document() | {
        "late_reasons": {"plan_first": ["insolvency"], "remember_days": 30}
    }
    save_version(db, document, actor="user:admin@example.test")
    assert _followups(_reminder(dispatcher, owner, conv)) == ["action_offer_plan"]
    reason = db.scalars(select(LatePaymentReason)).one()
    reason.created_at = utcnow() - timedelta(days=31)  # stated longer ago than remember_days
    db.flush()
    assert _followups(_reminder(dispatcher, owner, conv)) == []
    reason.created_at = utcnow()
    db.add(
        PaymentPlan(
            debtor_id=owner.id,
            total_minor=30_000,
            currency="EUR",
            installments_count=3,
            frequency="monthly",
            status="active",
        )
    )
    db.flush()
    assert _followups(_reminder(dispatcher, owner, conv)) == []  # a plan exists already


def test_a_dispute_is_recorded_as_the_reason(db: Session, dispatcher, debtor_setup) -> None:
    from actions.disputes import ActionCreateDispute

    owner, conv = debtor_setup
    tracker = make_tracker(
        slots_for(
            owner, conv, dispute_reason="wrong_amount", dispute_details="devis à 800, facture à 950"
        ),
        text="devis à 800, facture à 950",
    )
    ActionCreateDispute().run(dispatcher, tracker, {})
    reason = db.scalars(select(LatePaymentReason)).one()
    assert (reason.category, reason.words) == ("dispute", "devis à 800, facture à 950")


def _user(message, text: str, intent: str) -> dict:  # type: ignore[no-untyped-def]
    return {
        "event": "user",
        "text": text,
        "parse_data": {"intent": {"name": intent}, "entities": [], "text": text},
        "metadata": {"message_id": str(message.id), "channel": "sms"},
    }


def test_a_forgotten_payment_waiting_for_the_identity_check_is_recorded_as_oversight(
    db: Session, dispatcher, debtor_setup
) -> None:
    from actions.payments import ActionSendPaymentLink

    owner, conv = debtor_setup
    forgot = make_message(db, conv, "oups j'ai oublié de payer")
    postcode = make_message(db, conv, "75011")
    events = [_user(forgot, forgot.body, "forgot_to_pay"), _user(postcode, "75011", "inform")]
    tracker = make_tracker(slots_for(owner, conv), text="75011", events=events)
    ActionSendPaymentLink().run(dispatcher, tracker, {})
    ActionSendPaymentLink().run(dispatcher, tracker, {})  # asked again: recorded once
    reason = db.scalars(select(LatePaymentReason)).one()
    assert (reason.category, reason.words, reason.message_id) == (
        "oversight",
        forgot.body,
        forgot.id,
    )
    assert responses(dispatcher) == ["utter_payment_link"] * 2


@pytest.mark.parametrize(
    ("text", "recorded"),
    [("I never got the invoice", ["not_received"]), ("send me a copy of the invoice", [])],
)
def test_an_invoice_never_received_is_recorded_a_copy_request_is_not(
    db: Session, dispatcher, debtor_setup, text: str, recorded: list[str]
) -> None:
    from actions.balance import ActionSendInvoiceCopy

    owner, conv = debtor_setup
    message = make_message(db, conv, text)
    tracker = make_tracker(
        slots_for(owner, conv),
        text=text,
        intent="request_invoice_copy",
        events=[_user(message, text, "request_invoice_copy")],
    )
    ActionSendInvoiceCopy().run(dispatcher, tracker, {})
    assert [r.category for r in db.scalars(select(LatePaymentReason))] == recorded
    assert responses(dispatcher) == ["utter_invoice_copy_requested"]
