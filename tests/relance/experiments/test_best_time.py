"""Best time to contact: learned from reply and payment timestamps, used by the planner inside the
legal windows when the policy says so, shown on the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.conversations.repository import conversation_for_debtor
from relance.db.models import DunningAction
from relance.dunning.planner import plan
from relance.experiments import best_time
from relance.policy.schema import Policy
from relance.policy.service import seed_document, validate_document
from relance.simulator import population
from tests.factories import make_debtor, make_invoice, make_message, make_payment, make_user

MONDAY_8 = "2026-11-23 07:00:00"  # 08:00 in Paris


def _replies(db: Session, peak: int, n: int) -> None:
    """`n` SMS replies from one consumer debtor at the planted local (Paris, UTC+1) hours."""
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    start = datetime(2026, 11, 2, tzinfo=UTC)
    for i, hour in enumerate(population.reply_hours(peak, n, seed=peak)):
        at = start + timedelta(days=i % 14, hours=hour - 1)  # Paris is UTC+1 in November
        make_message(
            db,
            conversation_for_debtor(db, debtor),
            channel="sms",
            direction="inbound",
            created_at=at,
        )


def _best_time_policy() -> Policy:
    document = seed_document()
    return validate_document(
        {**document, "contact": {**document.get("contact", {}), "best_time": True}}
    )


def test_the_learned_best_hour_per_segment_and_channel_is_the_planted_peak(db: Session) -> None:
    _replies(db, 18, 300)
    [found] = best_time.learn(db, since=datetime(2026, 11, 1, tzinfo=UTC))
    assert (found.segment, found.channel, found.hour) == ("consumer", "sms", 18)
    assert found.events == 300


@freeze_time(MONDAY_8)
def test_the_planner_sends_at_the_best_hour_inside_the_window_when_the_policy_says_so(
    db: Session,
) -> None:
    _replies(db, 18, 300)
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=datetime(2026, 11, 20).date())
    policy = _best_time_policy()
    report = plan(db, debtor_ids=[debtor.id], policy=policy)
    assert report.counts["best_time_moved"] == 1
    [action] = db.scalars(select(DunningAction).where(DunningAction.debtor_id == debtor.id))
    assert action.next_attempt_at == datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # 18:00 Paris


@freeze_time(MONDAY_8)
def test_a_peak_outside_the_legal_window_gives_the_closest_allowed_hour(db: Session) -> None:
    _replies(db, 22, 300)  # FR windows end at 20:00
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=datetime(2026, 11, 20).date())
    policy = _best_time_policy()
    plan(db, debtor_ids=[debtor.id], policy=policy)
    [action] = db.scalars(select(DunningAction).where(DunningAction.debtor_id == debtor.id))
    assert action.next_attempt_at == datetime(2026, 11, 23, 18, 0, tzinfo=UTC)  # 19:00 Paris


@freeze_time(MONDAY_8)
def test_without_the_policy_flag_the_planner_does_not_move_anything(db: Session) -> None:
    _replies(db, 18, 300)
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=datetime(2026, 11, 20).date())
    plan(db, debtor_ids=[debtor.id])
    [action] = db.scalars(select(DunningAction).where(DunningAction.debtor_id == debtor.id))
    assert action.next_attempt_at is None


def test_the_dashboard_shows_the_best_hour(db: Session, client: TestClient) -> None:
    from tests.console.conftest import login

    _replies(db, 18, 300)
    admin = make_user(db, "admin")
    assert login(client, admin.email).status_code == 303
    page = client.get("/console/dashboard?period=365")
    assert page.status_code == 200
    assert 'data-kpi="best-consumer-sms">18:00' in page.text


def test_a_reversed_payment_is_no_payment_hour(db: Session) -> None:
    """Payments peak at 10:00 Paris; forty more at 16:00 came back (SEPA returns): not a signal."""
    debtor = make_debtor(db)
    start = datetime(2026, 11, 2, tzinfo=UTC)
    for i in range(40):
        make_payment(db, debtor, 1000, received_at=start + timedelta(days=i % 14, hours=9))
        make_payment(
            db,
            debtor,
            1000,
            received_at=start + timedelta(days=i % 14, hours=15),
            reversed_at=start + timedelta(days=i % 14 + 3),
        )
    [found] = best_time.learn(db, since=datetime(2026, 11, 1, tzinfo=UTC))
    assert (found.channel, found.hour, found.events) == ("payment", 10, 40)
