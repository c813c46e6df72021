"""The audit trail: one append-only row per contact, money movement, consent or policy change."""

from __future__ import annotations

from typing import Any

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
        actor=actor,
        action=action,
        entity_type=getattr(entity, "__tablename__", None),
        entity_id=str(entity_id) if (entity_id := getattr(entity, "id", None)) else None,
        debtor_id=debtor_id,
        details={k: _jsonable(v) for k, v in details.items()},
    )
    session.add(event)
    return event


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
