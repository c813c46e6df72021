"""Retention purges conversation content of settled, quiet debtors only, and is audited."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.base import utcnow
from relance.db.models import AuditEvent, Conversation, Dispute, Message, ReplyRetry
from relance.privacy import retention
from relance.settings import Settings
from relance.worker import jobs
from tests.relance.privacy.helpers import seed_debtor, seed_tracker, tracker_senders


def _bodies(db: Session, debtor_id: int) -> list[str]:
    db.expire_all()
    return list(
        db.scalars(
            select(Message.body)
            .join(Conversation)
            .where(Conversation.debtor_id == debtor_id)
            .order_by(Message.id)
        )
    )


@pytest.fixture
def population(db: Session, tmp_path: Path) -> dict[str, int]:
    due = seed_debtor(db, tmp_path, old=True)  # settled three years ago, quiet since
    recent = seed_debtor(db, tmp_path, surname="Recent")  # settled yesterday
    owing = seed_debtor(db, tmp_path, old=True, surname="Owing", settled=False)
    for dispute in db.scalars(select(Dispute).where(Dispute.debtor_id == owing.debtor.id)):
        dispute.status = "rejected"  # only the unpaid invoice keeps this one's content
    db.flush()
    return {"due": due.debtor.id, "recent": recent.debtor.id, "owing": owing.debtor.id}


def test_dry_run_lists_what_is_due_and_changes_nothing(
    db: Session, settings: Settings, population: dict[str, int]
) -> None:
    before = _bodies(db, population["due"])
    report = retention.run(db, dry_run=True, settings=settings)
    assert report.debtor_ids == [population["due"]]
    assert report.messages == 3
    assert _bodies(db, population["due"]) == before
    assert (
        db.scalars(select(AuditEvent).where(AuditEvent.action == retention.ACTION)).first() is None
    )


def test_purges_only_settled_quiet_debtors_past_retention(
    db: Session, settings: Settings, population: dict[str, int]
) -> None:
    tracker = seed_tracker(settings.var_dir, *(f"debtor-{i}" for i in population.values()))
    report = retention.run(db, settings=settings)

    assert report.debtor_ids == [population["due"]]
    assert _bodies(db, population["due"]) == ["", "", ""]
    assert all(
        _bodies(db, population[k]) and all(_bodies(db, population[k])) for k in ("recent", "owing")
    )
    assert tracker_senders(tracker) == sorted(
        f"debtor-{population[k]}" for k in ("recent", "owing")
    )
    # the facts of each contact stay
    kept = db.scalars(
        select(Message).join(Conversation).where(Conversation.debtor_id == population["due"])
    ).all()
    assert {(m.channel, m.direction, m.status) for m in kept} >= {("sms", "inbound", "received")}
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == retention.ACTION)).one()
    assert event.debtor_id == population["due"]
    assert event.details == {"messages": 3, "tracker_events": 1, "retention_days": 730}
    # a second run finds nothing left to do
    assert retention.run(db, settings=settings).debtor_ids == []


def test_retention_period_is_a_setting(
    db: Session, monkeypatch: pytest.MonkeyPatch, population: dict[str, int]
) -> None:
    from relance.settings import get_settings

    monkeypatch.setenv("RETENTION_CONVERSATION_DAYS", "5000")
    get_settings.cache_clear()
    assert retention.run(db, dry_run=True).debtor_ids == []
    monkeypatch.setenv("RETENTION_CONVERSATION_DAYS", "0")
    get_settings.cache_clear()
    assert retention.scheduled_run() is None  # switched off


def test_worker_runs_retention_daily(db: Session, population: dict[str, int]) -> None:
    interval, job = jobs.SCHEDULE["privacy.retention"]
    assert interval == 24 * 3600
    assert job() == {
        "conversations": {
            "debtors": 1,
            "messages": 3,
            "tracker_events": 0,
            "unknown_sender_retries": 0,
        },
        "webhook_events": 0,
    }
    assert _bodies(db, population["due"]) == ["", "", ""]


def _stranger_retry(db: Session, address: str, status: str, age: timedelta) -> ReplyRetry:
    """The retry of the answer to someone not on file (no message, no contact), `age` old."""
    now = utcnow()
    retry = ReplyRetry(
        channel="email",
        status=status,
        attempts=1,
        next_attempt_at=now,
        mail_key=f"unknown:<{address}-{status}>",
        address=address if status in ("pending", "sending") else None,
        mail_bytes=f"To: {address}\r\n\r\nBonjour".encode() if status == "pending" else None,
        created_at=now - age,
    )
    db.add(retry)
    db.flush()
    return retry


def test_unknown_sender_retries_past_the_period_are_deleted_whatever_their_state(
    db: Session, settings: Settings
) -> None:
    """A stranger's retry row holds their address and the e-mail: none outlives the retention
    period, pending or not; younger ones stay (they may still be sent)."""
    old = timedelta(days=settings.retention_conversation_days + 1)
    doomed = [
        _stranger_retry(db, "ancien@inconnu.example", "pending", old).id,
        _stranger_retry(db, "fini@inconnu.example", "failed", old).id,
        _stranger_retry(db, "envoi@inconnu.example", "sending", old).id,
    ]
    young = _stranger_retry(db, "recent@inconnu.example", "pending", timedelta(days=3)).id

    dry = retention.run(db, dry_run=True, settings=settings)
    assert dry.unknown_sender_retries == 3
    assert len(db.scalars(select(ReplyRetry)).all()) == 4

    report = retention.run(db, settings=settings)
    assert report.unknown_sender_retries == 3
    db.expire_all()
    assert db.scalars(select(ReplyRetry.id)).all() == [young]
    assert all(db.get(ReplyRetry, i) is None for i in doomed)
    event = db.scalars(
        select(AuditEvent).where(AuditEvent.action == retention.STRANGERS_ACTION)
    ).one()
    assert event.details == {"rows": 3, "retention_days": settings.retention_conversation_days}
    assert retention.run(db, settings=settings).unknown_sender_retries == 0
