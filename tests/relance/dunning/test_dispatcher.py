"""Dispatcher, with a frozen clock and a recording gateway: priming, compliance deferral, retries
with backoff, channel fallback, re-checks since planning, letters and legal escalation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.conversations.ports import DeliveryError
from relance.db import session as db_session
from relance.db.base import utcnow
from relance.db.models import AuditEvent, Conversation, DunningAction, Letter, Task
from relance.dunning.dispatcher import Dispatcher
from relance.dunning.planner import plan
from relance.dunning.ratelimit import SenderRateLimiter
from relance.outbox.models import OutboxEvent
from relance.rasa_client import AssistantUnavailable
from tests.factories import make_debtor, make_invoice, verify_contact_point
from tests.relance.dunning.helpers import FakeAssistant, FakeGateway, utc

MONDAY_11 = "2026-11-23 10:00:00"  # 11:00 in Paris


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def assistant() -> FakeAssistant:
    return FakeAssistant()


def _dispatcher(gateway: FakeGateway, assistant: FakeAssistant, **kw) -> Dispatcher:  # type: ignore[no-untyped-def]
    return Dispatcher(
        db_session.get_sessionmaker(), gateway=gateway, assistant=assistant, worker_id="test", **kw
    )


def _actions(db: Session, debtor_id: int) -> list[DunningAction]:
    db.expire_all()
    return list(
        db.scalars(
            select(DunningAction)
            .where(DunningAction.debtor_id == debtor_id)
            .order_by(DunningAction.id)
        )
    )


@freeze_time(MONDAY_11)
def test_group_is_primed_in_rasa_and_sent_once(db: Session, gateway, assistant) -> None:  # type: ignore[no-untyped-def]
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    a = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    b = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=10))
    plan(db, debtor_ids=[debtor.id])
    outcomes = _dispatcher(gateway, assistant).run()
    assert outcomes == {"sent": 1}
    [(sender, intent, entities)] = assistant.calls
    assert intent == "EXTERNAL_reminder" and sender == f"debtor-{debtor.id}"
    assert entities["stage"] == "firm"  # the most advanced stage leads the message
    assert entities["invoice_refs"] == [b.number, a.number] and entities["first_contact"] is True
    assert entities["discreet"] is True  # nobody has answered from this number yet
    # Rasa's trigger_intent carries no metadata: who and where travel as entities, or the
    # debtor's answer to the reminder would meet a conversation without a debtor.
    conversation = db.scalars(select(Conversation).where(Conversation.debtor_id == debtor.id)).one()
    assert (entities["debtor_id"], entities["conversation_id"]) == (
        str(debtor.id),
        str(conversation.id),
    )
    assert (entities["channel"], entities["language"]) == ("sms", conversation.language)
    [sent] = gateway.sent
    assert sent["channel"] == "sms" and b.number in sent["body"]
    actions = _actions(db, debtor.id)
    assert {x.status for x in actions} == {"sent"}
    assert {x.message_id for x in actions} == {sent["message_id"]}
    assert _dispatcher(gateway, assistant).run() == {}  # nothing left: never twice
    assert len(gateway.sent) == 1
    assert db.scalars(select(AuditEvent).where(AuditEvent.action == "dunning.sent")).first()


def test_sunday_defers_to_monday_morning(db: Session, gateway, assistant) -> None:  # type: ignore[no-untyped-def]
    with freeze_time("2026-11-22 10:00:00"):
        debtor = make_debtor(db, channels=("sms", "whatsapp"))
        make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
        plan(db, debtor_ids=[debtor.id])
        assert _dispatcher(gateway, assistant).run() == {"deferred": 1}
        [action] = _actions(db, debtor.id)
        assert action.status == "planned" and action.outcome == "deferred:sunday"
        assert action.next_attempt_at == utc(2026, 11, 23, 9, 0)
        assert "Sunday" in (action.detail or "")
        assert _dispatcher(gateway, assistant).run() == {}  # not due again before Monday
    with freeze_time("2026-11-23 09:00:00"):
        assert _dispatcher(gateway, assistant).run() == {"sent": 1}
    assert len(gateway.sent) == 1


@freeze_time(MONDAY_11)
def test_retryable_error_backs_off_then_falls_back_to_next_channel(
    db: Session, gateway, assistant
) -> None:  # type: ignore[no-untyped-def]
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    plan(db, debtor_ids=[debtor.id])
    gateway.fail["sms"] = [DeliveryError("429", retryable=True, code="20429") for _ in range(3)]
    dispatcher = _dispatcher(gateway, assistant)
    assert dispatcher.run() == {"retry": 1}
    [action] = _actions(db, debtor.id)
    assert (action.status, action.attempts, action.outcome) == ("retry", 1, "20429")
    assert action.next_attempt_at == utcnow() + timedelta(minutes=5)
    with freeze_time("2026-11-23 10:06:00"):
        assert dispatcher.run() == {"retry": 1}
        assert _actions(db, debtor.id)[0].next_attempt_at == utcnow() + timedelta(minutes=30)
    with freeze_time("2026-11-23 10:40:00"):
        assert dispatcher.run() == {"sent": 1}  # third SMS failure: WhatsApp takes over
    [action] = _actions(db, debtor.id)
    assert (action.status, action.channel) == ("sent", "whatsapp")
    assert [s["channel"] for s in gateway.sent] == ["whatsapp"]
    assert gateway.sent[0]["first_contact_template"] is True  # no 24 h session open


@freeze_time(MONDAY_11)
def test_hard_failure_falls_back_at_once_and_all_failing_is_recorded(
    db: Session, gateway, assistant
) -> None:  # type: ignore[no-untyped-def]
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    plan(db, debtor_ids=[debtor.id])
    gateway.fail["sms"] = [DeliveryError("invalid number", retryable=False, code="21211")]
    gateway.fail["whatsapp"] = [DeliveryError("not on whatsapp", retryable=False, code="63003")]
    assert _dispatcher(gateway, assistant).run() == {"failed": 1}
    [action] = _actions(db, debtor.id)
    assert action.status == "failed" and "21211" in (action.detail or "")
    assert "63003" in (action.detail or "") and gateway.sent == []


@freeze_time(MONDAY_11)
def test_opted_out_since_planning_uses_the_next_channel(db: Session, gateway, assistant) -> None:  # type: ignore[no-untyped-def]
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    plan(db, debtor_ids=[debtor.id])
    next(c for c in debtor.contacts if c.channel == "sms").opted_out_at = utcnow()
    db.flush()
    assert _dispatcher(gateway, assistant).run() == {"sent": 1}
    assert [s["channel"] for s in gateway.sent] == ["whatsapp"]


@freeze_time(MONDAY_11)
def test_invoice_paid_since_planning_is_cancelled_not_sent(db: Session, gateway, assistant) -> None:  # type: ignore[no-untyped-def]
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    paid = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    still = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    plan(db, debtor_ids=[debtor.id])
    paid.paid_minor = paid.amount_minor
    db.flush()
    assert _dispatcher(gateway, assistant).run() == {"sent": 1}
    assert assistant.calls[0][2]["invoice_refs"] == [still.number]
    by_invoice = {a.invoice_id: a for a in _actions(db, debtor.id)}
    assert (by_invoice[paid.id].status, by_invoice[paid.id].outcome) == ("cancelled", "paid")


@freeze_time(MONDAY_11)
def test_rasa_down_and_no_local_template_retries_later(db: Session, gateway, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import relance.nlg.templates_store as store

    monkeypatch.setattr(store, "active_templates", lambda session: {})
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    plan(db, debtor_ids=[debtor.id])
    down = FakeAssistant(error=AssistantUnavailable("503"))
    assert _dispatcher(gateway, down).run() == {"retry": 1}
    assert _actions(db, debtor.id)[0].outcome == "assistant_unavailable" and gateway.sent == []


@freeze_time(MONDAY_11)
def test_rasa_down_renders_the_stage_template_locally(db: Session, gateway, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import relance.nlg.templates_store as store

    templates = {
        "utter_reminder_friendly": [
            {
                "fr": "Rappel {{ invoice_refs|join(', ') }}",
                "en": "Reminder {{ invoice_refs|join(', ') }}",
            }
        ]
    }
    monkeypatch.setattr(store, "active_templates", lambda session: templates)
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    plan(db, debtor_ids=[debtor.id])
    verify_contact_point(db, debtor)
    assert _dispatcher(gateway, FakeAssistant(error=AssistantUnavailable("503"))).run() == {
        "sent": 1
    }
    assert gateway.sent[0]["body"] == f"Rappel {invoice.number}"


@freeze_time(MONDAY_11)
def test_action_server_dying_during_the_reminder_sends_the_local_template(  # type: ignore[no-untyped-def]
    db: Session, gateway, monkeypatch
) -> None:
    """Rasa answers 200 without its custom action's reply: that half reply is never sent."""
    import relance.nlg.templates_store as store
    from relance.settings import get_settings
    from tests.support.fake_action_server import FakeActionServer

    templates = {
        "utter_reminder_friendly": [
            {
                "fr": "Rappel {{ invoice_refs|join(', ') }}",
                "en": "Reminder {{ invoice_refs|join(', ') }}",
            }
        ]
    }
    monkeypatch.setattr(store, "active_templates", lambda session: templates)
    actions = FakeActionServer()
    monkeypatch.setenv("ACTION_SERVER_URL", actions.url)
    get_settings.cache_clear()
    try:
        debtor = make_debtor(db, channels=("sms", "whatsapp"))
        invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
        plan(db, debtor_ids=[debtor.id])
        verify_contact_point(db, debtor)

        class DyingMidTurn(FakeAssistant):
            def trigger_intent(self, *args, **kwargs):  # type: ignore[no-untyped-def]
                actions.up = False
                return super().trigger_intent(*args, **kwargs)

        assistant = DyingMidTurn()
        assert _dispatcher(gateway, assistant).run() == {"sent": 1}
    finally:
        actions.stop()
    assert len(assistant.calls) == 1
    assert assistant.events == [[{"event": "rewind"}]]
    assert [m["body"] for m in gateway.sent] == [f"Rappel {invoice.number}"]


@freeze_time(MONDAY_11)
def test_rasa_down_unverified_contact_gets_the_discreet_template(db: Session, gateway) -> None:  # type: ignore[no-untyped-def]
    debtor = make_debtor(db, name="Jeanne Martin", channels=("sms", "whatsapp"))
    invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    plan(db, debtor_ids=[debtor.id])
    assert _dispatcher(gateway, FakeAssistant(error=AssistantUnavailable("503"))).run() == {
        "sent": 1
    }
    body = gateway.sent[0]["body"]
    assert "Relance" in body or "assistant" in body  # who we are
    assert invoice.number not in body and "Jeanne" not in body and "€" not in body
    assert "/pay/" not in body


@freeze_time(MONDAY_11)
def test_verified_contact_point_gets_the_detailed_reminder(db: Session, gateway, assistant) -> None:  # type: ignore[no-untyped-def]
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    verify_contact_point(db, debtor)
    plan(db, debtor_ids=[debtor.id])
    assert _dispatcher(gateway, assistant).run() == {"sent": 1}
    [(_, _, entities)] = assistant.calls
    assert "discreet" not in entities


@freeze_time(MONDAY_11)
def test_call_stage_places_a_call(db: Session, gateway, assistant) -> None:  # type: ignore[no-untyped-def]
    debtor = make_debtor(db, channels=("sms", "voice"))
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=20))
    plan(db, debtor_ids=[debtor.id])
    assert _dispatcher(gateway, assistant).run() == {"sent": 1}
    assert gateway.sent[0]["channel"] == "voice"
    assert gateway.sent[0]["body"] == "reminder:final:discreet"  # whoever answers hears nothing


@freeze_time(MONDAY_11)
def test_call_to_a_verified_number_may_give_details(db: Session, gateway, assistant) -> None:  # type: ignore[no-untyped-def]
    debtor = make_debtor(db, channels=("sms", "voice"))
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=20))
    verify_contact_point(db, debtor)
    plan(db, debtor_ids=[debtor.id])
    assert _dispatcher(gateway, assistant).run() == {"sent": 1}
    assert gateway.sent[0]["body"] == "reminder:final"


@freeze_time(MONDAY_11)
def test_formal_notice_queues_a_letter_then_an_sms_notice(db: Session, gateway, assistant) -> None:  # type: ignore[no-untyped-def]
    debtor = make_debtor(
        db, segment="b2b", company="Atelier Martin SARL", channels=("sms", "whatsapp")
    )
    invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=30))
    plan(db, debtor_ids=[debtor.id])
    dispatcher = _dispatcher(gateway, assistant)
    assert dispatcher.run() == {"letter": 1}
    [letter] = db.scalars(select(Letter).where(Letter.debtor_id == debtor.id)).all()
    assert letter.status == "queued" and letter.invoice_ids == [invoice.id]
    assert letter.indemnity_minor == 4000 and letter.pdf_path
    assert gateway.sent == []  # the SMS respects the minimum gap like any contact...
    with freeze_time("2026-11-24 10:00:00"):
        assert dispatcher.run() == {"sent": 1}
    assert assistant.calls[-1][2]["stage"] == "formal_notice_announce"
    stages = sorted(a.stage for a in _actions(db, debtor.id))
    assert stages == ["formal_notice", "formal_notice_notice"]


@freeze_time(MONDAY_11)
def test_legal_stage_opens_a_task_for_collectors(db: Session, gateway, assistant) -> None:  # type: ignore[no-untyped-def]
    debtor = make_debtor(db, segment="b2b", channels=("sms", "whatsapp"))
    invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=45))
    plan(db, debtor_ids=[debtor.id])
    assert _dispatcher(gateway, assistant).run() == {"escalated": 1}
    [task] = db.scalars(select(Task).where(Task.debtor_id == debtor.id)).all()
    assert task.kind == "legal_escalation" and task.details["invoice_ids"] == [invoice.id]


@freeze_time(MONDAY_11)
def test_legal_escalation_tells_the_creditors_system_once(db: Session, gateway, assistant) -> None:  # type: ignore[no-untyped-def]
    """The legal stage emits one `escalation` outbox event (kind legal) with its task; a second
    run, after planning again (the worker retried, the planner ran again), emits no other."""
    debtor = make_debtor(db, segment="b2b", channels=("sms", "whatsapp"))
    invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=45))
    plan(db, debtor_ids=[debtor.id])
    assert _dispatcher(gateway, assistant).run() == {"escalated": 1}
    plan(db, debtor_ids=[debtor.id])
    assert _dispatcher(gateway, assistant).run() == {}
    db.expire_all()
    [event] = db.scalars(
        select(OutboxEvent).where(
            OutboxEvent.debtor_id == debtor.id, OutboxEvent.type == "escalation"
        )
    ).all()
    [task] = db.scalars(select(Task).where(Task.debtor_id == debtor.id)).all()
    assert event.data == {
        "kind": "legal",
        "invoice_ids": [invoice.id],
        "stage": task.details["stage"],
    }
    assert gateway.sent == []  # escalated, not messaged


@freeze_time(MONDAY_11)
def test_highest_priority_goes_first_and_limit_is_respected(
    db: Session, gateway, assistant
) -> None:  # type: ignore[no-untyped-def]
    low = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, low, due=utcnow().date() - timedelta(days=3), amount_minor=1000)
    high = make_debtor(db, risk_class="high", channels=("sms", "whatsapp"))
    make_invoice(db, high, due=utcnow().date() - timedelta(days=3), amount_minor=500000)
    plan(db, debtor_ids=[low.id, high.id])
    assert _dispatcher(gateway, assistant).run(limit=1) == {"sent": 1}
    assert gateway.sent[0]["debtor_id"] == high.id


def test_rate_limiter_spaces_sends_per_sender() -> None:
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    limiter = SenderRateLimiter(60, clock=lambda: clock[0], sleep=sleep)
    assert [limiter.acquire("+33757000000") for _ in range(3)] == [0.0, 1.0, 1.0]
    assert limiter.acquire("+33757000001") == 0.0  # another sender has its own bucket
    clock[0] += 5
    assert limiter.acquire("+33757000000") == 0.0
    assert slept == [1.0, 1.0]


@freeze_time(MONDAY_11)
def test_dispatcher_uses_the_rate_limiter(db: Session, gateway, assistant) -> None:  # type: ignore[no-untyped-def]
    acquired: list[str] = []

    class Spy(SenderRateLimiter):
        def acquire(self, sender: str) -> float:
            acquired.append(sender)
            return 0.0

    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    plan(db, debtor_ids=[debtor.id])
    _dispatcher(gateway, assistant, limiter=Spy(60)).run()
    assert acquired == ["+33757000000"]


@freeze_time(MONDAY_11)
def test_stale_claims_are_failed_never_resent(db: Session, gateway, assistant) -> None:  # type: ignore[no-untyped-def]
    from relance.dunning.dispatcher import release_stale

    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    plan(db, debtor_ids=[debtor.id])
    [action] = _actions(db, debtor.id)
    action.status, action.claimed_by = "sending", "dead-worker"
    action.claimed_at = utcnow() - timedelta(hours=1)
    db.flush()
    assert release_stale(db, now=utcnow(), older_than=timedelta(minutes=30)) == 1
    assert (action.status, action.outcome) == ("failed", "stale_claim")
    assert _dispatcher(gateway, assistant).run() == {} and gateway.sent == []


@freeze_time(MONDAY_11)
def test_rasa_down_the_local_reminder_says_what_the_assistant_would(  # type: ignore[no-untyped-def]
    db: Session, gateway
) -> None:
    """The bundled wording rendered locally used to get the invoice number alone: no amount, no
    due date, no link, and no RF reference, so a bank transfer made from it matched nothing."""
    from relance.bank_statements import rf

    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=12))  # firm stage
    plan(db, debtor_ids=[debtor.id])
    verify_contact_point(db, debtor)
    assert _dispatcher(gateway, FakeAssistant(error=AssistantUnavailable("503"))).run() == {
        "sent": 1
    }
    body = gateway.sent[0]["body"].replace("\u202f", " ").replace("\xa0", " ")
    assert invoice.number in body
    assert f"{invoice.amount_minor // 100},{invoice.amount_minor % 100:02d} €" in body, body
    assert "/pay/" in body, body
    assert rf.printable(rf.for_invoice(invoice.id)) in body, body
