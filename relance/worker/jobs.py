"""The periodic jobs as plain functions (one unit of work each), used by Celery and the embedded
scheduler alike. Jobs owned by other features run only if their module is importable."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from relance.db import session as db_session
from relance.db.base import utcnow
from relance.db.session import session_scope

log = logging.getLogger(__name__)


def optional(module: str, name: str) -> Callable[..., Any] | None:
    """`module.name` if that module exists (features land independently), else None."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


@lru_cache
def _limiter():  # type: ignore[no-untyped-def]
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


def plan_and_dispatch(now: datetime | None = None) -> dict[str, Any]:
    return {"plan": plan_dunning(now), "dispatch": dispatch_dunning(now)}


def replay_pending() -> int | None:
    replay_all = optional("relance.conversations.replay", "replay_all")
    if replay_all is None:
        return None
    from relance.rasa_client import client_from_settings

    rasa = client_from_settings()
    try:
        with session_scope() as session:
            return int(replay_all(session, rasa))
    finally:
        rasa.close()


def followups(now: datetime | None = None) -> Any:
    run_followups = optional("relance.followups.service", "run_followups")
    if run_followups is None:
        return None
    with session_scope() as session:
        return run_followups(session, (now or utcnow()).date())


def retention() -> Any:
    """Purge conversation content of settled debtors past RETENTION_CONVERSATION_DAYS."""
    scheduled_run = optional("relance.privacy.retention", "scheduled_run")
    return None if scheduled_run is None else scheduled_run()


# name -> (interval in seconds, job). Planning is idempotent, so running it often is harmless.
SCHEDULE: dict[str, tuple[float, Callable[[], Any]]] = {
    "dunning.plan": (60 * 60, plan_dunning),
    "dunning.dispatch": (60, dispatch_dunning),
    "conversations.replay": (60, replay_pending),
    "followups.run": (60 * 60, followups),
    "privacy.retention": (24 * 60 * 60, retention),
}
