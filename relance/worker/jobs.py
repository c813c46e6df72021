"""The periodic jobs as plain functions (one unit of work each), used by Celery and the embedded
scheduler alike.

Every job's module is imported here, plainly: a job whose code is missing or broken makes the
worker fail at start-up, loudly, instead of quietly dropping the job (dunning that silently stops
is worse than a worker that refuses to start).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from relance.conversations.ports import get_mailbox_poller
from relance.conversations.replay import replay_all
from relance.conversations.reply_retry import retry_due
from relance.db import session as db_session
from relance.db.base import utcnow
from relance.db.session import session_scope
from relance.followups.service import run_followups
from relance.outbox.service import deliver_due, scheduled_prune
from relance.privacy.retention import scheduled_run
from relance.worker.readiness import AssistantGate, assistant_is_ready

if TYPE_CHECKING:
    from relance.dunning.ratelimit import RateLimiter
    from relance.settings import Settings

log = logging.getLogger(__name__)


@lru_cache
def _limiter() -> RateLimiter:
    from relance.dunning.ratelimit import make_limiter
    from relance.policy.service import seed_policy
    from relance.settings import get_settings

    # Shared through Redis when REDIS_URL is set, so N workers together respect the rate.
    return make_limiter(seed_policy().contact.sender_rate_per_minute, get_settings().redis_url)


def plan_dunning(now: datetime | None = None) -> dict[str, int]:
    from relance.dunning.planner import plan

    with session_scope() as session:
        report = plan(session, now=now or utcnow(), keep=0)
    return dict(report.counts)


def dispatch_dunning(now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    from relance.dunning.dispatcher import Dispatcher, release_stale

    now = now or utcnow()
    with session_scope() as session:
        stale = release_stale(session, now=now, older_than=timedelta(minutes=30))
    dispatcher = Dispatcher(db_session.get_sessionmaker(), limiter=_limiter())
    outcomes = dict(dispatcher.run(now=now, limit=limit))
    if stale:
        outcomes["stale_claims"] = stale
    return outcomes


@lru_cache
def _assistant_gate() -> AssistantGate:
    """One per process, created at the first scheduled dispatch (the worker's start-up)."""
    from relance.settings import get_settings

    return AssistantGate(assistant_is_ready, get_settings().assistant_startup_wait_seconds)


def scheduled_dispatch() -> dict[str, int]:
    """The periodic dispatch: not before the assistant is ready (see `readiness`)."""
    if not _assistant_gate().is_open():
        return {"waiting_for_assistant": 1}
    return dispatch_dunning()


def replay_pending() -> int:
    from relance.rasa_client import client_from_settings

    rasa = client_from_settings()
    try:
        with session_scope() as session:
            return int(replay_all(session, rasa))
    finally:
        rasa.close()


def retry_replies(now: datetime | None = None) -> dict[str, int]:
    """Send again the replies whose send failed for a transient reason (backoff, cap, rules)."""
    return retry_due(db_session.get_sessionmaker(), now=now)


def followups(now: datetime | None = None) -> Any:
    with session_scope() as session:
        return run_followups(session, (now or utcnow()).date())


def refresh_experiments(now: datetime | None = None) -> dict[str, Any]:
    """Hourly: stop experiment arms past their guard rails (audited), then move traffic shares."""
    from relance.experiments.service import refresh

    with session_scope() as session:
        report = refresh(session, now=now or utcnow())
    return {"stopped_arms": report.stopped_arms, "weights": report.weights}


def retention() -> Any:
    """Purge conversation content of settled debtors past RETENTION_CONVERSATION_DAYS, and
    delivered outbox events past RETENTION_WEBHOOK_DAYS."""
    return {"conversations": scheduled_run(), "webhook_events": scheduled_prune()}


def deliver_webhooks(now: datetime | None = None) -> dict[str, int]:
    """Send the outbox's due webhook deliveries (retries included, with their backoff)."""
    return deliver_due(db_session.get_sessionmaker(), now=now)


def poll_mailbox() -> dict[str, object]:
    """Take the replies mailbox's new messages (IMAP) through the inbound e-mail path."""
    return get_mailbox_poller().poll().summary()


# name -> (interval in seconds, job). Planning is idempotent, so running it often is harmless.
SCHEDULE: dict[str, tuple[float, Callable[[], Any]]] = {
    "dunning.plan": (60 * 60, plan_dunning),
    "dunning.dispatch": (60, scheduled_dispatch),
    "conversations.replay": (60, replay_pending),
    "conversations.retry_replies": (30, retry_replies),
    "followups.run": (60 * 60, followups),
    "experiments.refresh": (60 * 60, refresh_experiments),
    "privacy.retention": (24 * 60 * 60, retention),
    "webhooks.deliver": (30, deliver_webhooks),
}


def schedule(settings: Settings) -> dict[str, tuple[float, Callable[[], Any]]]:
    """SCHEDULE, plus the IMAP poll at IMAP_POLL_SECONDS when a mailbox is configured (without
    IMAP_HOST there is no job at all, rather than one that fails every minute)."""
    jobs = dict(SCHEDULE)
    if settings.imap_enabled:
        jobs["mail.poll"] = (settings.imap_poll_seconds, poll_mailbox)
    return jobs
