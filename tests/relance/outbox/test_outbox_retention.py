"""The daily retention job deletes delivered outbox events once old enough, nothing else."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.base import utcnow
from relance.outbox import service as outbox
from relance.outbox.models import OutboxEvent, WebhookDelivery
from relance.settings import Settings
from relance.worker import jobs


def _event(db: Session, age_days: int, *statuses: str) -> OutboxEvent:
    event = outbox.emit(db, "letter.sent", debtor_id=None)
    event.created_at = utcnow() - timedelta(days=age_days)
    db.flush()
    deliveries = db.scalars(select(WebhookDelivery).where(WebhookDelivery.event_id == event.id))
    for delivery, status in zip(deliveries, statuses, strict=True):
        delivery.status = status
    db.flush()
    return event


@pytest.fixture
def two_endpoints(db: Session) -> None:
    for name in ("a", "b"):
        outbox.create_endpoint(
            db, url=f"https://{name}.example/hook", events=[], description="", actor="a"
        )


@pytest.mark.usefixtures("two_endpoints")
def test_only_old_fully_delivered_events_are_pruned(db: Session, settings: Settings) -> None:
    settings.retention_webhook_days = 90
    old_done = _event(db, 100, "delivered", "delivered")
    old_half = _event(db, 100, "delivered", "failed")
    old_pending = _event(db, 100, "delivered", "pending")
    recent_done = _event(db, 10, "delivered", "delivered")
    kept = {old_half.id, old_pending.id, recent_done.id}
    result = jobs.retention()
    assert result["webhook_events"] == 1
    remaining = set(db.scalars(select(OutboxEvent.id)))
    assert old_done.id not in remaining and kept <= remaining
    assert not db.scalars(
        select(WebhookDelivery).where(WebhookDelivery.event_id == old_done.id)
    ).all()


def test_zero_days_keeps_everything(db: Session, settings: Settings) -> None:
    settings.retention_webhook_days = 0
    event = _event(db, 1000)
    assert outbox.scheduled_prune() is None
    assert db.get(OutboxEvent, event.id) is not None
