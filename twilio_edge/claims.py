"""Claim-first idempotency for Twilio webhooks (SMS, voice, status), keyed by provider id.

The row is inserted *before* any work with INSERT ... ON CONFLICT DO NOTHING. A concurrent retry
of the same event blocks on the unique key (PostgreSQL) or on the write lock (SQLite) until the
first request commits. The conversation path commits the claim with the inbound message before
it calls the assistant, so a duplicate may find the claim still without an answer: it then waits
for the answer (`await_answer`) and returns it: the work runs once, every copy gets one answer.
If the first request fails before that commit, its claim is rolled back and a retry proceeds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from relance.db.base import utcnow
from relance.db.models import WebhookEvent

PROVIDER = "twilio"


@dataclass
class Claim:
    event: WebhookEvent
    fresh: (
        bool  # True: this request does the work; False: a retry, answer with `event.response_body`
    )


def claim(session: Session, event_id: str, kind: str, payload: dict[str, Any]) -> Claim:
    dialect = session.get_bind().dialect.name
    values = {
        "provider": PROVIDER,
        "event_id": event_id,
        "kind": kind,
        "payload": payload,
        "received_at": utcnow(),
    }
    statement: postgresql.Insert | sqlite.Insert
    if dialect == "postgresql":
        statement = postgresql.insert(WebhookEvent).values(**values)
    elif dialect == "sqlite":
        statement = sqlite.insert(WebhookEvent).values(**values)
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RuntimeError(f"unsupported database dialect {dialect}")
    statement = statement.on_conflict_do_nothing(index_elements=["provider", "event_id"])
    # RETURNING yields a row only when this statement inserted it (rowcount is unreliable here:
    # psycopg reports -1 for this statement).
    inserted = session.execute(statement.returning(WebhookEvent.id)).first() is not None
    event = session.scalars(
        select(WebhookEvent).where(
            WebhookEvent.provider == PROVIDER, WebhookEvent.event_id == event_id
        )
    ).one()
    return Claim(event=event, fresh=inserted)


def finish(claimed: Claim, response_body: str) -> str:
    """Remember the answer so a retry gets exactly the same one."""
    claimed.event.response_body = response_body
    claimed.event.processed_at = utcnow()
    return response_body


def await_answer(session: Session, claimed: Claim, timeout: float) -> str | None:
    """For a duplicate: the first request's answer once it is stored (None after `timeout`)."""
    deadline = time.monotonic() + timeout
    event_id = claimed.event.id
    while claimed.event.response_body is None and time.monotonic() < deadline:
        session.rollback()  # hold no lock while the first request works
        time.sleep(0.1)
        claimed.event = session.get(WebhookEvent, event_id, populate_existing=True) or claimed.event
    return claimed.event.response_body
