"""Conversation view and the collector's actions: DB state, audit trail, gateway and Rasa calls."""

from __future__ import annotations

from datetime import date, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.conversations.ports import DeliveryError
from relance.db.base import utcnow
from relance.db.models import AuditEvent, Handoff, Invoice, Message, Promise, User
from tests.console.conftest import FakeGateway, FakeRasa, csrf_of
from tests.factories import (
    make_contact,
    make_conversation,
    make_debtor,
    make_dispute,
    make_failed_reply,
    make_handed_off_case,
    make_invoice,
    make_message,
    make_payment,
    make_plan,
    make_promise,
    make_user,
)


def _post(client: TestClient, path: str, **data: str):  # type: ignore[no-untyped-def]
    token = csrf_of(client)
    return client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)


def _actions(db: Session) -> list[str]:
    return list(db.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_conversation_page_shows_transcript_and_debtor_360(
    as_collector: TestClient, db: Session
) -> None:
    owner, conv, _h = make_handed_off_case(db, name="Camille Petit")
    make_message(db, conv, "Votre facture est en retard.", direction="outbound")
    make_message(db, conv, "(appel) je rappelle demain", channel="voice")
    make_contact(
        db, owner, channel="whatsapp", address="whatsapp:+33611111111", opted_out_at=utcnow()
    )
    make_promise(db, owner, status="broken")
    make_dispute(db, owner, details="Livraison incomplète")
    make_plan(db, owner, [7_500] * 8, with_installments=False, status="pending_approval")
    html = as_collector.get(f"/console/conversations/{conv.id}").text
    for expected in (
        "Camille Petit",
        "Je veux parler à quelqu&#39;un",
        "Votre facture est en retard.",
        "je rappelle demain",
        "chan-voice",
        "€100.00",
        "Livraison incomplète",
        "pending approval",
        "opted out",
        "broken",
        "Take over",
    ):
        assert expected in html, expected
    assert 'name="text"' not in html  # no reply box before taking over


def test_a_reversed_payment_shows_as_reversed_with_its_reason(
    as_collector: TestClient, db: Session
) -> None:
    owner, conv, _h = make_handed_off_case(db)
    make_payment(db, owner, 2_500)
    make_payment(db, owner, 4_000, reversed_at=utcnow(), reversal_reason="dispute:general")
    make_payment(
        db, owner, 6_000, reversed_at=utcnow(), reversed_minor=1_500, reversal_reason="dispute_lost"
    )
    html = as_collector.get(f"/console/conversations/{conv.id}").text
    assert "Paid €25.00 · card" in html
    assert "<s>Paid €40.00</s> reversed · card" in html and "(dispute:general)" in html
    assert "Paid €60.00, €15.00 of it reversed · card" in html and "(dispute_lost)" in html


def test_take_over_reply_and_hand_back(
    as_collector: TestClient, db: Session, collector: User, gateway: FakeGateway, rasa: FakeRasa
) -> None:
    owner, conv, handoff = make_handed_off_case(db)
    contact = owner.contacts[0]

    taken = _post(as_collector, f"/console/conversations/{conv.id}/take-over")
    assert taken.status_code == 303
    db.refresh(conv), db.refresh(handoff)
    assert conv.mode == "human"
    assert handoff.status == "assigned" and handoff.assigned_to_id == collector.id
    page = as_collector.get(taken.headers["location"]).text
    assert "You now own this conversation" in page and 'name="text"' in page

    replied = _post(
        as_collector,
        f"/console/conversations/{conv.id}/reply",
        text="Bonjour, je suis Claire du service client.",
    )
    assert replied.headers["location"].endswith("done=replied")
    assert gateway.sent == [
        {
            "conversation_id": conv.id,
            "address": contact.address,
            "channel": "sms",
            "text": "Bonjour, je suis Claire du service client.",
            "author": "collector",
        }
    ]
    stored = db.scalars(select(Message).where(Message.author == "collector")).one()
    assert stored.body.startswith("Bonjour") and stored.direction == "outbound"
    assert (
        "events",
        conv.sender_id,
        [
            {
                "event": "bot",
                "text": "Bonjour, je suis Claire du service client.",
                "metadata": {"author": "collector"},
            }
        ],
    ) in rasa.calls

    rasa.replies = ["Je reprends la conversation. Où en étions-nous ?"]
    back = _post(as_collector, f"/console/conversations/{conv.id}/hand-back")
    assert back.headers["location"].endswith("done=handed_back")
    db.refresh(conv), db.refresh(handoff)
    assert conv.mode == "bot"
    assert handoff.status == "closed" and handoff.closed_at is not None
    assert ("events", conv.sender_id, [{"event": "resume"}]) in rasa.calls
    assert ("intent", conv.sender_id, "EXTERNAL_resume") in rasa.calls
    assert gateway.sent[-1]["text"] == "Je reprends la conversation. Où en étions-nous ?"
    assert gateway.sent[-1]["author"] == "bot"
    assert {
        "conversation.taken_over",
        "message.collector_reply",
        "handoff.closed",
        "handoff.resumed",
    } <= set(_actions(db))


def test_hand_back_still_works_when_rasa_is_down(
    as_collector: TestClient, db: Session, collector: User, gateway: FakeGateway, rasa: FakeRasa
) -> None:
    _owner, conv, handoff = make_handed_off_case(db)
    _post(as_collector, f"/console/conversations/{conv.id}/take-over")
    rasa.down = True
    back = _post(as_collector, f"/console/conversations/{conv.id}/hand-back")
    assert back.headers["location"].endswith("done=handed_back_deferred")
    db.refresh(conv), db.refresh(handoff)
    assert conv.mode == "bot" and handoff.status == "closed"
    assert "conversation.resume_deferred" in _actions(db)
    assert gateway.sent == []
    assert "The assistant is unreachable" in as_collector.get(back.headers["location"]).text


def test_hand_back_with_the_real_client_and_nothing_listening(
    as_collector: TestClient, db: Session, gateway: FakeGateway
) -> None:
    """RASA_URL points at a closed port in tests: the real HTTP client must not break hand-back."""
    _owner, conv, _handoff = make_handed_off_case(db)
    back = _post(as_collector, f"/console/conversations/{conv.id}/hand-back")
    assert back.status_code == 303
    db.refresh(conv)
    assert conv.mode == "bot"


def test_reply_needs_ownership_and_a_reachable_contact(
    as_collector: TestClient, db: Session, gateway: FakeGateway, rasa: FakeRasa
) -> None:
    owner, conv, _h = make_handed_off_case(db)
    refused = _post(as_collector, f"/console/conversations/{conv.id}/reply", text="Hello")
    assert "error=Take+over" in refused.headers["location"]
    _post(as_collector, f"/console/conversations/{conv.id}/take-over")
    owner.contacts[0].opted_out_at = utcnow()
    db.flush()
    blocked = _post(as_collector, f"/console/conversations/{conv.id}/reply", text="Hello")
    assert "opted+out" in blocked.headers["location"]
    assert gateway.sent == []


def test_another_collectors_conversation_cannot_be_answered(
    as_collector: TestClient, db: Session, gateway: FakeGateway, rasa: FakeRasa
) -> None:
    other = make_user(db, "collector")
    _owner, conv, handoff = make_handed_off_case(db)
    handoff.status, handoff.assigned_to_id, conv.mode = "assigned", other.id, "human"
    db.flush()
    response = _post(as_collector, f"/console/conversations/{conv.id}/reply", text="Hi")
    assert "Another+collector" in response.headers["location"]
    assert gateway.sent == []


def test_failed_delivery_is_shown_and_audited(
    as_collector: TestClient, db: Session, gateway: FakeGateway, rasa: FakeRasa
) -> None:
    _owner, conv, _h = make_handed_off_case(db)
    _post(as_collector, f"/console/conversations/{conv.id}/take-over")
    gateway.fail_with = DeliveryError("carrier rejected", retryable=False, code="30006")
    response = _post(as_collector, f"/console/conversations/{conv.id}/reply", text="Hello")
    assert "could+not+be+sent" in response.headers["location"]
    assert "message.collector_reply_failed" in _actions(db)


def test_voice_caller_gets_the_reply_by_sms(
    as_collector: TestClient, db: Session, gateway: FakeGateway, rasa: FakeRasa
) -> None:
    _owner, conv, _h = make_handed_off_case(db)
    conv.last_channel = "voice"
    db.flush()
    _post(as_collector, f"/console/conversations/{conv.id}/take-over")
    _post(as_collector, f"/console/conversations/{conv.id}/reply", text="Suite à votre appel")
    assert gateway.sent[0]["channel"] == "sms"


def test_approve_and_reject_plan_exceptions(
    as_collector: TestClient, db: Session, collector: User
) -> None:
    owner, conv, _h = make_handed_off_case(db)
    approve_me = make_plan(
        db, owner, [7_500] * 8, with_installments=False, status="pending_approval"
    )
    reject_me = make_plan(
        db, owner, [7_500] * 8, with_installments=False, status="pending_approval"
    )
    ok = _post(
        as_collector,
        f"/console/conversations/{conv.id}/plans/{approve_me.id}",
        decision="approve",
        note="Loyal customer",
    )
    assert ok.headers["location"].endswith("done=plan_approved")
    _post(as_collector, f"/console/conversations/{conv.id}/plans/{reject_me.id}", decision="reject")
    db.refresh(approve_me), db.refresh(reject_me)
    assert approve_me.status == "active" and approve_me.approved_by == f"user:{collector.email}"
    assert reject_me.status == "rejected"
    again = _post(
        as_collector, f"/console/conversations/{conv.id}/plans/{reject_me.id}", decision="approve"
    )
    assert "not+waiting+for+approval" in again.headers["location"]
    assert {"plan.approved", "plan.rejected"} <= set(_actions(db))


def test_resolve_dispute_closes_dunning_reject_resumes_it(
    as_collector: TestClient, db: Session
) -> None:
    owner, conv, _h = make_handed_off_case(db)
    inv_a = make_invoice(db, owner, status="disputed")
    inv_b = make_invoice(db, owner, status="disputed")
    upheld = make_dispute(db, owner, invoice_id=inv_a.id)
    rejected = make_dispute(db, owner, invoice_id=inv_b.id)
    no_note = _post(
        as_collector,
        f"/console/conversations/{conv.id}/disputes/{upheld.id}",
        decision="resolve",
        note=" ",
    )
    assert "resolution+note" in no_note.headers["location"]
    _post(
        as_collector,
        f"/console/conversations/{conv.id}/disputes/{upheld.id}",
        decision="resolve",
        note="Credit note issued",
    )
    _post(
        as_collector,
        f"/console/conversations/{conv.id}/disputes/{rejected.id}",
        decision="reject",
        note="Proof of delivery signed",
    )
    db.refresh(upheld), db.refresh(rejected), db.refresh(inv_a), db.refresh(inv_b)
    assert upheld.status == "resolved" and inv_a.status == "cancelled"
    assert rejected.status == "rejected" and inv_b.status == "open"
    assert rejected.resolution_note == "Proof of delivery signed"
    assert {"dispute.resolved", "dispute.rejected"} <= set(_actions(db))


def test_deciding_closes_the_review_and_approval_tasks(
    as_collector: TestClient, db: Session
) -> None:
    from relance.db.models import Task

    owner, conv, _h = make_handed_off_case(db)
    dispute = make_dispute(db, owner)
    plan = make_plan(db, owner, [7_500] * 8, with_installments=False, status="pending_approval")
    review = Task(kind="dispute_review", debtor_id=owner.id, details={"dispute_id": dispute.id})
    approval = Task(kind="plan_approval", debtor_id=owner.id, details={"plan_id": plan.id})
    db.add_all([review, approval])
    db.flush()
    _post(
        as_collector,
        f"/console/conversations/{conv.id}/disputes/{dispute.id}",
        decision="reject",
        note="Delivered in full",
    )
    _post(as_collector, f"/console/conversations/{conv.id}/plans/{plan.id}", decision="approve")
    db.refresh(review), db.refresh(approval)
    assert (review.status, approval.status) == ("done", "done")


def test_record_promise_covers_the_open_invoices(as_collector: TestClient, db: Session) -> None:
    owner, conv, _h = make_handed_off_case(db)
    earlier = make_promise(db, owner)
    when = date.today() + timedelta(days=10)
    response = _post(
        as_collector,
        f"/console/conversations/{conv.id}/promises",
        amount="75,50",
        currency="EUR",
        promised_date=when.isoformat(),
    )
    assert response.headers["location"].endswith("done=promise_recorded")
    promise = db.scalars(
        select(Promise).where(Promise.debtor_id == owner.id, Promise.status == "pending")
    ).one()
    assert (promise.amount_minor, promise.source, promise.promised_date) == (
        7550,
        "collector",
        when,
    )
    invoice = db.scalars(select(Invoice).where(Invoice.debtor_id == owner.id)).one()
    assert promise.invoice_ids == [invoice.id]
    db.refresh(earlier)
    assert earlier.status == "cancelled"  # superseded by the new promise
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "promise.taken_by_collector")
    ).one()
    assert event.details["amount_minor"] == 7550 and event.debtor_id == owner.id
    assert event.actor.startswith("user:")
    past = _post(
        as_collector,
        f"/console/conversations/{conv.id}/promises",
        amount="10",
        currency="EUR",
        promised_date=(date.today() - timedelta(days=1)).isoformat(),
    )
    assert "in+the+past" in past.headers["location"]


def test_take_over_without_a_handoff_opens_one(
    as_collector: TestClient, db: Session, collector: User
) -> None:
    owner = make_debtor(db)
    make_contact(db, owner)
    conv = make_conversation(db, owner)
    _post(as_collector, f"/console/conversations/{conv.id}/take-over")
    handoff = db.scalars(select(Handoff).where(Handoff.conversation_id == conv.id)).one()
    assert handoff.reason == "collector_initiated" and handoff.assigned_to_id == collector.id


def test_transcript_fragment_for_live_updates(as_collector: TestClient, db: Session) -> None:
    _owner, conv, _h = make_handed_off_case(db)
    make_message(db, conv, "Nouveau message")
    fragment = as_collector.get(f"/console/conversations/{conv.id}/transcript").text
    assert fragment.lstrip().startswith('<div id="transcript"')
    assert "Nouveau message" in fragment and 'hx-trigger="every 4s"' in fragment


def test_unknown_conversation_is_404(as_collector: TestClient) -> None:
    missing = as_collector.get("/console/conversations/999999")
    assert missing.status_code == 404
    assert "This conversation does not exist (any more)." in missing.text


def test_send_payment_link_texts_a_working_link(
    as_collector: TestClient, db: Session, gateway: FakeGateway, rasa: FakeRasa
) -> None:
    from relance.db.models import PaymentLink

    owner, conv, _h = make_handed_off_case(db)
    refused = _post(as_collector, f"/console/conversations/{conv.id}/payment-link")
    assert "error=Take+over" in refused.headers["location"]
    _post(as_collector, f"/console/conversations/{conv.id}/take-over")
    sent = _post(
        as_collector, f"/console/conversations/{conv.id}/payment-link", amount="40", currency="EUR"
    )
    assert sent.headers["location"].endswith("done=link_sent")
    link = db.scalars(select(PaymentLink).where(PaymentLink.debtor_id == owner.id)).one()
    assert (link.amount_minor, link.currency) == (4000, "EUR")
    text = gateway.sent[-1]["text"]
    assert "/pay/" in text and "40,00" in text  # French debtor, French wording
    token = text.split("/pay/")[1].split()[0]
    assert as_collector.get(f"/pay/{token}").status_code == 200
    assert "payment_link.sent" in _actions(db)


def test_contact_history_shows_why_a_reminder_was_held(
    as_collector: TestClient, db: Session
) -> None:
    """A collector sees the compliance reason of a deferral (e.g. a time-zone conflict)."""
    from relance import audit

    owner, conv, _h = make_handed_off_case(db)
    why = (
        "outside_hours: 05:30 in America/Los_Angeles (phone +1 415) is outside the US contact "
        "hours (08:00-21:00)"
    )
    audit.record(
        db,
        actor="system",
        action="dunning.deferred",
        debtor_id=owner.id,
        channel="sms",
        why=why,
        retry_at=utcnow() + timedelta(hours=3),
    )
    db.flush()
    html = as_collector.get(f"/console/conversations/{conv.id}").text
    assert "dunning.deferred" in html and "05:30 in America/Los_Angeles (phone +1 415)" in html


def test_conversation_page_shows_the_reason_for_paying_late_escaped(
    as_collector: TestClient, db: Session
) -> None:
    from relance.late_reasons.service import StatedReason, record_stated

    owner, conv, _h = make_handed_off_case(db)
    html = as_collector.get(f"/console/conversations/{conv.id}").text
    assert "Reason for paying late" in html and "No reason given yet." in html
    for text in ("je suis au chômage depuis mars", "<script>alert(1)</script> I'm in hospital"):
        message = make_message(db, conv, text)
        record_stated(
            db,
            owner,
            StatedReason(
                text=text,
                intent="cannot_pay",
                conversation=conv,
                message_id=message.id,
                channel="sms",
            ),
        )
    html = as_collector.get(f"/console/conversations/{conv.id}").text
    card = html.split('id="late-reason"')[1].split("</section>")[0]
    assert "illness" in card and "&lt;script&gt;alert(1)&lt;/script&gt; I&#39;m in hospital" in card
    assert "<script>alert(1)" not in html
    assert "Said before the identity check." in card
    assert "Earlier reasons (1)" in card and "job loss" in card
    assert "je suis au chômage depuis mars" in card


def test_a_failed_reply_the_worker_retries_shows_as_retrying_and_one_failed_for_good_as_failed(
    as_collector: TestClient, db: Session
) -> None:
    owner, conv, _h = make_handed_off_case(db)
    sms = owner.contacts[0]
    make_failed_reply(db, conv, sms, "Votre solde est de 100 €.")
    make_failed_reply(db, conv, sms, "Voici le lien de paiement.", status="failed")
    html = as_collector.get(f"/console/conversations/{conv.id}/transcript").text
    retrying, given_up = html.split("Voici le lien de paiement.")
    assert "retrying" in retrying and 'tag danger">failed' not in retrying
    assert 'tag danger">failed' in given_up and "retrying" not in given_up


def test_a_conversation_the_bot_handed_off_says_it_waits_until_a_collector_takes_it(
    as_collector: TestClient, db: Session
) -> None:
    """Seen in the console: a conversation the bot had handed off, that nobody had taken yet,
    was labelled "Collector is talking" while the debtor's messages waited for anyone."""
    _owner, conv, _handoff = make_handed_off_case(db, name="Camille Petit")
    conv.mode = "human"  # what the bot's handoff sets: the bot stays silent
    db.commit()
    page = as_collector.get(f"/console/conversations/{conv.id}").text
    assert ">Waiting for a collector</span>" in page and "Collector is talking" not in page
    assert _post(as_collector, f"/console/conversations/{conv.id}/take-over").status_code == 303
    assert (
        ">Collector is talking</span>" in as_collector.get(f"/console/conversations/{conv.id}").text
    )
