"""Counters kept in the audit trail: failed sign-ins, logins and identity answers.

A counted event is an audit event whose `entity_type` names the counter and whose `entity_id`
is a hash of what is counted (the customer number typed, the client's address, an address and
e-mail pair). The counts then hold across api processes and restarts with no store of their
own, and the trail keeps the failures as evidence anyway. The portal's sign-in and the console's
login both count this way (`relance.portal.access`, `relance.auth.ratelimit`,
`relance.address_limit`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance import audit
from relance.db.models import AuditEvent


def count_since(
    session: Session, *, action: str, entity_type: str, key: str, since: datetime
) -> int:
    """How many `action` events were counted against `key` since `since`."""
    return (
        session.scalar(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.action == action,
                AuditEvent.entity_type == entity_type,
                AuditEvent.entity_id == key,
                AuditEvent.at >= since,
            )
        )
        or 0
    )


def newest_since(
    session: Session, *, action: str, entity_type: str, key: str, since: datetime, limit: int
) -> list[datetime]:
    """When the newest `limit` `action` events against `key` since `since` happened, newest
    first: the last one is the event whose ageing out frees a place under a limit of `limit`."""
    return list(
        session.scalars(
            select(AuditEvent.at)
            .where(
                AuditEvent.action == action,
                AuditEvent.entity_type == entity_type,
                AuditEvent.entity_id == key,
                AuditEvent.at >= since,
            )
            .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )


def record_counted(
    session: Session,
    *,
    action: str,
    entity_type: str,
    key: str,
    debtor_id: int | None = None,
    **details: Any,
) -> AuditEvent:
    """An anonymous visitor's event, counted against `key` (flushed: the next count sees it)."""
    event = audit.record(session, actor="anonymous", action=action, debtor_id=debtor_id, **details)
    event.entity_type = entity_type
    event.entity_id = key
    session.flush()
    return event
