"""Queries for handoffs."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import Handoff
from relance.db.models.enums import HandoffStatus


def open_handoff(session: Session, conversation_id: int) -> Handoff | None:
    return session.scalars(
        select(Handoff).where(
            Handoff.conversation_id == conversation_id,
            Handoff.status.in_([HandoffStatus.OPEN, HandoffStatus.ASSIGNED]),
        )
    ).first()
