"""Retention purges conversation content of settled, quiet debtors only, and is audited."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import AuditEvent, Conversation, Dispute, Message
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
        "conversations": {"debtors": 1, "messages": 3, "tracker_events": 0},
        "webhook_events": 0,
    }
    assert _bodies(db, population["due"]) == ["", "", ""]
