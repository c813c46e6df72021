"""A dispatch run lasts minutes (the rate limiter sleeps between sends): the contact window is
judged at the moment of each send, by a clock that advances with those sleeps, never by the
instant the run started. Whatever the closing window leaves is deferred with its reason.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db import session as db_session
from relance.db.models import DunningAction
from relance.dunning.dispatcher import Dispatcher
from relance.dunning.planner import plan
from relance.dunning.ratelimit import SenderRateLimiter
from tests.factories import make_debtor, make_invoice
from tests.relance.dunning.helpers import FakeAssistant, FakeGateway, utc


class FakeClock:
    """Wall clock and monotonic clock in one; `sleep` (the rate limiter's) moves both."""

    def __init__(self, start: datetime) -> None:
        self.at = start

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self.at.timestamp()

    def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def _run_four_groups(db: Session, start: datetime, **debtor: object) -> tuple[list, FakeGateway]:  # type: ignore[type-arg]
    """Four debtors due, one send per minute from `start`; returns their actions and the sends."""
    clock = FakeClock(start)
    gateway = FakeGateway()
    with freeze_time(start):
        debtors = []
        for n in range(4):
            extra = dict(debtor)
            if "phone" in extra:
                extra["phone"] = f"{extra['phone']}{n}"
            d = make_debtor(db, channels=("sms",), **extra)  # type: ignore[arg-type]
            make_invoice(db, d, due=start.date() - timedelta(days=10))
            debtors.append(d)
        plan(db, debtor_ids=[d.id for d in debtors])
        db.commit()
        dispatcher = Dispatcher(
            db_session.get_sessionmaker(),
            gateway=gateway,
            assistant=FakeAssistant(),
            worker_id="test",
            clock=clock.now,
            limiter=SenderRateLimiter(1, clock=clock.monotonic, sleep=clock.sleep),
        )
        outcomes = dispatcher.run()
    assert outcomes == {"sent": 2, "deferred": 2}, outcomes
    db.expire_all()
    actions = list(
        db.scalars(
            select(DunningAction)
            .where(DunningAction.debtor_id.in_([d.id for d in debtors]))
            .order_by(DunningAction.id)
        )
    )
    return actions, gateway


def test_us_run_started_at_20_58_30_sends_nothing_after_21_00(db: Session) -> None:
    start = utc(2026, 11, 23, 1, 58, 30)  # Sunday 20:58:30 in New York (EST)
    actions, gateway = _run_four_groups(
        db,
        start,
        jurisdiction="US",
        timezone="America/New_York",
        phone="+121255501",
        postcode="10001",
        city="New York",
        country="US",
        language="en",
    )
    sent = [a for a in actions if a.status == "sent"]
    deferred = [a for a in actions if a.status == "planned"]
    assert len(gateway.sent) == 2 and len(sent) == 2 and len(deferred) == 2
    # 20:58:30 and 20:59:30 went out; 21:00:30 and 21:01:30 did not.
    assert sorted(a.sent_at for a in sent) == [start, start + timedelta(minutes=1)]
    for action in deferred:
        assert action.outcome == "deferred:outside_hours"
        assert "21:00" in (action.detail or "") and "08:00-21:00" in (action.detail or "")
        assert action.next_attempt_at == utc(2026, 11, 23, 13, 0)  # Monday 08:00 in New York


def test_fr_run_started_at_19_58_30_stops_at_20_00(db: Session) -> None:
    start = utc(2026, 11, 23, 18, 58, 30)  # Monday 19:58:30 in Paris
    actions, gateway = _run_four_groups(db, start)
    sent = [a for a in actions if a.status == "sent"]
    deferred = [a for a in actions if a.status == "planned"]
    assert len(gateway.sent) == 2 and sorted(a.sent_at for a in sent) == [
        start,
        start + timedelta(minutes=1),
    ]
    assert {a.outcome for a in deferred} == {"deferred:outside_hours"} and len(deferred) == 2
    assert {a.next_attempt_at for a in deferred} == {utc(2026, 11, 24, 9, 0)}  # Tuesday 10:00
