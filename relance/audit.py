"""The audit trail: one append-only row per contact, money movement, consent or policy change."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from relance.db.models import AuditEvent


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: object | None = None,
    debtor_id: int | None = None,
    **details: Any,
) -> AuditEvent:
    """Add an audit event to the current unit of work (the caller commits).

    `entity` is any model instance with an `id`; its table name is stored as the entity type.
    """
    event = AuditEvent(
        **event_values(
            actor=actor,
            action=action,
            entity_type=getattr(entity, "__tablename__", None),
            entity_id=getattr(entity, "id", None),
            debtor_id=debtor_id,
            **details,
        )
    )
    session.add(event)
    return event


def event_values(
    *,
    actor: str,
    action: str,
    entity_type: str | None = None,
    entity_id: object | None = None,
    debtor_id: int | None = None,
    **details: Any,
) -> dict[str, Any]:
    """The columns of one audit event, as `record` stores them: for `record_many`."""
    return {
        "actor": actor,
        "action": action,
        "entity_type": entity_type,
        "entity_id": str(entity_id) if entity_id else None,
        "debtor_id": debtor_id,
        "details": {k: _jsonable(v) for k, v in details.items()},
    }


def record_many(session: Session, events: list[dict[str, Any]]) -> None:
    """Insert many audit events (`event_values`) in one statement: a batch of e-mails writes
    its trail without one INSERT per event (nothing reads their ids)."""
    if events:
        session.execute(insert(AuditEvent), events)


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


# For other records that keep details the same way (relance/outbox).
jsonable = _jsonable
