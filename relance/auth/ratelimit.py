"""Login throttling per client IP + e-mail, stored as audit events.

Failures are kept in the audit trail (they are evidence anyway), keyed by a hash of IP + e-mail,
so the limit holds across api replicas and restarts without a separate store.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance import audit
from relance.db.base import utcnow
from relance.db.models import AuditEvent

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
FAILED_ACTION = "auth.login_failed"
_ENTITY = "login_attempt"


def attempt_key(ip: str, email: str) -> str:
    return hashlib.sha256(f"{ip}|{email.strip().lower()}".encode()).hexdigest()


def recent_failures(session: Session, ip: str, email: str) -> int:
    return session.scalar(
        select(func.count(AuditEvent.id)).where(
            AuditEvent.action == FAILED_ACTION,
            AuditEvent.entity_type == _ENTITY,
            AuditEvent.entity_id == attempt_key(ip, email),
            AuditEvent.at >= utcnow() - WINDOW,
        )
    ) or 0


def is_blocked(session: Session, ip: str, email: str) -> bool:
    return recent_failures(session, ip, email) >= MAX_FAILURES


def record_failure(session: Session, ip: str, email: str) -> None:
    event = audit.record(session, actor="anonymous", action=FAILED_ACTION, ip=ip, email=email[:254])
    event.entity_type = _ENTITY
    event.entity_id = attempt_key(ip, email)
