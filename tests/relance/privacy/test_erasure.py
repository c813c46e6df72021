"""Erasure removes every trace of the person from every table, keeps the accounts, stops all
contact, and is refused while money is being collected or a dispute is open."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance.compliance.service import check_contact
from relance.conversations.repository import conversation_for_debtor
from relance.db.base import utcnow
from relance.db.models import (
    AuditEvent,
    Contact,
    Dispute,
    DunningAction,
    Handoff,
    Invoice,
    Letter,
    Message,
    Payment,
    PaymentLink,
    PaymentReview,
    ReplyRetry,
    SavedPaymentMethod,
    Task,
)
from relance.dunning.planner import plan
from relance.errors import Conflict, InvalidContent
from relance.policy.service import seed_policy
from relance.privacy.erasure import blockers, erase, is_erased
from relance.settings import Settings
from tests.factories import make_failed_reply
from tests.relance.privacy.helpers import (
    occurrences,
    seed_debtor,
    seed_tracker,
    tracker_senders,
)


def test_erase_removes_every_occurrence_and_keeps_the_accounts(
    db: Session, settings: Settings, tmp_path: Path
) -> None:
    seeded = seed_debtor(db, tmp_path)
    other = seed_debtor(db, tmp_path, surname="Okonkwo")
    debtor = seeded.debtor
    tracker = seed_tracker(settings.var_dir, f"debtor-{debtor.id}", f"debtor-{other.debtor.id}")
    assert occurrences(db, seeded.needles)  # the scan sees the data before erasure
    totals_before = db.execute(
        select(func.sum(Invoice.amount_minor), func.sum(Invoice.paid_minor)).where(
            Invoice.debtor_id == debtor.id
        )
    ).one()

    report = erase(
        db,
        debtor,
        actor="user:admin@example.test",
        reason=f"Request by e-mail from {seeded.name} on 2026-11-30",
    )
    db.flush()
    db.expire_all()

    assert occurrences(db, seeded.needles) == {}
    assert report.leftovers == {}
    assert not seeded.pdf.exists()
    # accounting facts kept
    invoice = db.get(Invoice, seeded.invoice.id)
    assert invoice is not None and invoice.number == seeded.invoice.number
    assert (
        db.execute(
            select(func.sum(Invoice.amount_minor), func.sum(Invoice.paid_minor)).where(
                Invoice.debtor_id == debtor.id
            )
        ).one()
        == totals_before
    )
    payment = db.scalars(select(Payment).where(Payment.debtor_id == debtor.id)).one()
    assert payment.amount_minor == 12_345 and payment.provider_ref.startswith("pi_priv_")
    assert debtor.customer_number == seeded.debtor.customer_number
    # contact history kept as facts, content gone
    messages = list(
        db.scalars(
            select(Message)
            .join(Message.conversation)
            .where(Message.conversation.has(debtor_id=debtor.id))
        )
    )
    assert len(messages) == 3
    assert all(m.body == "" and m.address is None for m in messages)
    assert {m.channel for m in messages} == {"sms", "voice"}
    assert [m.extra for m in messages if m.extra] == [
        {"segment": 1},
        {"input": "dtmf", "call_status": "completed"},
    ]
    # the other debtor is untouched
    assert occurrences(db, [other.name, other.text])
    # nothing can be sent any more
    contacts = list(db.scalars(select(Contact).where(Contact.debtor_id == debtor.id)))
    assert contacts and all(not c.reachable and not c.consent for c in contacts)
    assert db.get(PaymentLink, seeded.link.id).expires_at <= utcnow()
    assert (
        db.scalars(select(SavedPaymentMethod).where(SavedPaymentMethod.debtor_id == debtor.id))
        .one()
        .revoked_at
        is not None
    )
    assert db.scalars(select(Task.status).where(Task.debtor_id == debtor.id)).all() == ["cancelled"]
    assert db.scalars(select(Letter.status).where(Letter.debtor_id == debtor.id)).all() == [
        "cancelled"
    ]
    # the Rasa conversation is gone, the other one stays
    assert tracker_senders(tracker) == [f"debtor-{other.debtor.id}"]
    assert report.tracker_events == 1
    # audited once, without the erased data (the scan above covers audit_events too)
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "privacy.erased")).one()
    assert event.debtor_id == debtor.id and event.actor == "user:admin@example.test"
    assert event.details["reason"] == "Request by e-mail from [erased] on 2026-11-30"
    assert event.details["counts"]["contacts_opted_out"] == 2
    assert is_erased(db, debtor.id)


def test_payment_review_notes_are_cleared_and_the_payment_kept(db: Session, tmp_path: Path) -> None:
    """A collector's note on a held payment (payments to review) is free text about the person."""
    from relance.ledger.service import Expected, Hold, record_payment

    seeded = seed_debtor(db, tmp_path)
    expected = Expected(5000, "EUR", seeded.debtor.id)
    held = record_payment(
        db,
        debtor_id=seeded.debtor.id,
        amount_minor=100,
        currency="USD",
        method="card",
        provider="stripe",
        provider_ref="pi_erase_review",
        hold=Hold(expected, ["currency"]),
    )
    review = db.scalars(
        select(PaymentReview).where(PaymentReview.payment_id == held.payment.id)
    ).one()
    review.note = f"refunded to {seeded.name} by phone"
    db.flush()
    erase(db, seeded.debtor, actor="cli:ops", reason="request", force=True)
    db.refresh(review)
    assert review.note is None and review.payment_id == held.payment.id


def test_refused_with_an_open_balance_and_nothing_changes(db: Session, tmp_path: Path) -> None:
    seeded = seed_debtor(db, tmp_path, settled=False)
    with pytest.raises(Conflict) as refused:
        erase(db, seeded.debtor, actor="cli:ops", reason="request")
    assert refused.value.code == "erasure_refused"
    assert refused.value.details["blockers"] == blockers(db, seeded.debtor)
    assert "open balance of 12345 minor units EUR on 1 invoice(s)" in str(refused.value)
    assert "open dispute(s) DSP-PRIV-" in str(refused.value)
    assert seeded.debtor.name == seeded.name
    assert (
        db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "privacy.erased")
        )
        == 0
    )


def test_reason_is_required(db: Session, tmp_path: Path) -> None:
    seeded = seed_debtor(db, tmp_path)
    with pytest.raises(InvalidContent, match="reason") as blank:
        erase(db, seeded.debtor, actor="cli:ops", reason="  ")
    with pytest.raises(InvalidContent) as long:
        erase(db, seeded.debtor, actor="cli:ops", reason="x" * 501)
    assert (blank.value.code, long.value.code) == ("reason_required", "reason_too_long")
    assert seeded.debtor.name == seeded.name and not is_erased(db, seeded.debtor.id)


def test_forced_erasure_with_open_balance_blocks_every_later_send(
    db: Session, tmp_path: Path
) -> None:
    seeded = seed_debtor(db, tmp_path, settled=False)
    control = seed_debtor(db, tmp_path, settled=False, surname="Control")
    debtor = seeded.debtor
    for dispute in db.scalars(
        select(Dispute).where(Dispute.debtor_id.in_([debtor.id, control.debtor.id]))
    ):
        dispute.status = "rejected"  # dunning resumes on both
    for handoff in db.scalars(select(Handoff)):
        handoff.status = "closed"  # and the bot handles both again
    report = erase(db, debtor, actor="cli:ops", reason="court order 2026-123", force=True)
    db.flush()
    assert report.forced and report.blockers
    assert occurrences(db, seeded.needles) == {}
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "privacy.erased")).one()
    assert event.details["forced"] is True and event.details["overridden"] == report.blockers
    # the planned stage was cancelled; planning again plans no message, call or letter
    db.add(
        DunningAction(
            idempotency_key="x:reminder",
            invoice_id=seeded.invoice.id,
            debtor_id=debtor.id,
            stage="reminder",
            kind="message",
            group_key="x",
            status="planned",
            channels=["sms"],
        )
    )
    db.flush()
    erase(db, debtor, actor="cli:ops", reason="again", force=True)  # idempotent second run
    assert (
        db.scalars(
            select(DunningAction.status).where(DunningAction.idempotency_key == "x:reminder")
        ).one()
        == "cancelled"
    )
    now = utcnow()
    for days in (3, 20, 45, 90):
        plan(db, now=now + timedelta(days=days), debtor_ids=[debtor.id, control.debtor.id])

    def contacts_planned(debtor_id: int) -> list[str]:
        """Message, call or letter stages the planner added (whatever became of them since)."""
        return list(
            db.scalars(
                select(DunningAction.stage).where(
                    DunningAction.debtor_id == debtor_id,
                    DunningAction.run_id.is_not(None),
                    DunningAction.kind.in_(("message", "call", "letter")),
                )
            )
        )

    assert contacts_planned(control.debtor.id)  # the same file, not erased, is contacted
    assert contacts_planned(debtor.id) == []
    policy = seed_policy()
    for contact in db.scalars(select(Contact).where(Contact.debtor_id == debtor.id)):
        decision = check_contact(
            db, debtor=debtor, contact=contact, channel=contact.channel, now=now, policy=policy
        )
        assert "opted_out" in decision.codes


def test_reimporting_an_erased_debtor_brings_back_no_contact_point(
    db: Session, tmp_path: Path
) -> None:
    from relance.portfolio.importer import import_rows, read_csv

    seeded = seed_debtor(db, tmp_path)
    erase(db, seeded.debtor, actor="cli:ops", reason="request")
    header = (
        "customer_number,name,phone,invoice_number,amount,currency,issue_date,due_date,"
        "language,segment,whatsapp\n"
    )
    line = (
        f"{seeded.debtor.customer_number},{seeded.name},{seeded.phone},NEW-PRIV-1,50.00,EUR,"
        f"2026-10-01,2026-10-31,fr,consumer,{seeded.phone}\n"
    )
    report = import_rows(db, read_csv(header + line))
    assert report.ok, report.errors
    db.flush()
    db.expire_all()
    assert db.scalars(
        select(Invoice.number).where(
            Invoice.debtor_id == seeded.debtor.id, Invoice.number == "NEW-PRIV-1"
        )
    ).one()
    contacts = db.scalars(select(Contact).where(Contact.debtor_id == seeded.debtor.id)).all()
    assert all(c.address.startswith("erased:") and not c.reachable for c in contacts)
    assert occurrences(db, [seeded.phone, seeded.name]) == {}


def test_erasure_removes_the_unknown_sender_answers_to_the_debtors_address(
    db: Session, tmp_path: Path
) -> None:
    """The debtor once wrote from their address before it was on file: the identity-check
    answer's retry kept the address and the e-mail, and its task the address. Erasure deletes
    the retry, cuts the address out of the task and cancels it; the debtor's own reply retry
    is cancelled. Another stranger's retry stays."""
    seeded = seed_debtor(db, tmp_path)
    now = utcnow()
    mine = ReplyRetry(
        channel="email",
        status="pending",
        attempts=1,
        next_attempt_at=now,
        mail_key="unknown:<question@example.org>",
        address=seeded.email.upper(),  # as the sender typed it
        mail_bytes=f"To: {seeded.email}\r\nSubject: Re: facture\r\n\r\n...".encode(),
        last_error=f"451 <{seeded.email}> try later",
    )
    other = ReplyRetry(
        channel="email",
        status="pending",
        attempts=1,
        next_attempt_at=now,
        mail_key="unknown:<other@else.example>",
        address="quelquun@else.example",
        mail_bytes=b"To: quelquun@else.example\r\n\r\n...",
    )
    task = Task(
        kind="unknown_sender_unanswered",
        status="open",
        details={"address": seeded.email, "mail_key": mine.mail_key, "attempts": 1},
    )
    db.add_all([mine, other, task])
    sms = next(c for c in seeded.debtor.contacts if c.channel == "sms")
    own = make_failed_reply(
        db, conversation_for_debtor(db, seeded.debtor), sms, last_error=f"503 for {seeded.phone}"
    )
    db.flush()
    mine_id, other_id, own_id = mine.id, other.id, own.id
    assert "reply_retries.address" in occurrences(db, [seeded.email])

    report = erase(db, seeded.debtor, actor="user:admin@example.test", reason="request")
    db.flush()
    db.expire_all()

    assert report.leftovers == {}
    assert occurrences(db, seeded.needles) == {}
    assert db.get(ReplyRetry, mine_id) is None
    kept = db.get(ReplyRetry, other_id)
    assert kept is not None and kept.address == "quelquun@else.example"
    assert db.get(Task, task.id).status == "cancelled"
    assert db.get(Task, task.id).details["address"] == "[erased]"
    cancelled = db.get(ReplyRetry, own_id)
    assert (cancelled.status, cancelled.last_error) == ("cancelled", None)
    assert report.counts["unknown_sender_retries_deleted"] == 1
    assert report.counts["reply_retries_cancelled"] == 1
