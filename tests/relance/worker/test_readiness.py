"""The worker's scheduled dispatch waits for the assistant at start-up (issue 16 item 6, 18).

Rasa loads its model for a while after the worker starts; reminders dispatched then timed out
on the assistant and went out rendered locally, out of the conversation's context.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.base import utcnow
from relance.db.models import Debtor, DunningAction
from relance.dunning.planner import plan
from relance.settings import Settings, get_settings
from relance.worker import jobs
from relance.worker.readiness import AssistantGate
from tests.relance.dunning.helpers import FakeAssistant, FakeGateway
from tests.relance.worker.conftest import FROZEN_NOW
from tests.support.fake_rasa import FakeRasa


@pytest.fixture
def loading_rasa(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRasa]:
    """A Rasa still loading its model (`/status` fails) until the test says otherwise."""
    fake = FakeRasa().start()
    fake.down = True
    monkeypatch.setenv("RASA_URL", fake.url)
    get_settings.cache_clear()
    jobs._assistant_gate.cache_clear()
    try:
        yield fake
    finally:
        jobs._assistant_gate.cache_clear()
        fake.stop()


@freeze_time(FROZEN_NOW)
def test_scheduled_dispatch_waits_for_the_assistant_then_primes_it(
    db: Session,
    loading_rasa: FakeRasa,
    gateway: FakeGateway,
    assistant: FakeAssistant,
    overdue_debtor: Debtor,
) -> None:
    debtor = overdue_debtor
    plan(db, now=utcnow())
    _interval, scheduled = jobs.SCHEDULE["dunning.dispatch"]

    for _tick in range(3):
        scheduled()
    assert gateway.sent == [] and assistant.calls == [], "nothing before the assistant is ready"
    statuses = db.scalars(select(DunningAction.status).where(DunningAction.debtor_id == debtor.id))
    assert set(statuses) == {"planned"}

    loading_rasa.down = False  # model loaded
    outcomes = scheduled()
    assert outcomes.get("sent") == 1
    assert [call[1] for call in assistant.calls] == ["EXTERNAL_reminder"], "primed, not local"
    assert [s["debtor_id"] for s in gateway.sent] == [debtor.id]


def test_the_gate_opens_once_ready_and_stays_open() -> None:
    answers = iter([False, False, True])
    checks: list[bool] = []

    def is_ready() -> bool:
        checks.append(next(answers))
        return checks[-1]

    gate = AssistantGate(is_ready, patience=300, clock=lambda: 0.0)
    assert [gate.is_open() for _ in range(5)] == [False, False, True, True, True]
    assert len(checks) == 3, "no more checks once open"


def test_an_assistant_that_never_comes_up_does_not_stop_dunning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    gate = AssistantGate(lambda: False, patience=300, clock=lambda: now[0])
    now[0] = 299
    assert not gate.is_open()
    now[0] = 300
    with caplog.at_level(logging.ERROR, logger="relance.worker.readiness"):
        assert gate.is_open()
    assert "still not ready" in caplog.text
