"""Console users, API tokens, the audit trail, letters, payment links and versioned settings."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from relance.db.base import Base, MinorUnits, TimestampMixin, utcnow
from relance.db.models.enums import LetterStatus


class User(TimestampMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(default=True)


class ConsoleSession(Base):
    """A signed-in console session. The cookie carries a random id whose SHA-256 is stored here;
    a session is live while its row is neither ended nor expired, so logout, a password change
    or a deactivation ends it on the server, not only in the browser."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    ended_reason: Mapped[str | None] = mapped_column(String(32))  # logout, password, deactivated


class LoginThrottle(Base):
    """Failed logins per account (any client address), for the exponential backoff in
    `relance.auth.ratelimit`. Keyed by a hash of the e-mail, known account or not."""

    __tablename__ = "login_throttles"

    account_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime]


class ApiToken(TimestampMixin, Base):
    """Bearer token for /api/v1; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # A reporting or BI integration needs to read, never to change anything: such a token gets
    # 403 on every method but GET/HEAD, whoever it belongs to.
    read_only: Mapped[bool] = mapped_column(default=False)
    revoked_at: Mapped[datetime | None]


class AuditEvent(Base):
    """Append-only record of every contact, money movement and policy change (evidence for court)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(80))  # user:<email>, bot, system, debtor, api:<token>
    action: Mapped[str] = mapped_column(String(64), index=True)
    entity_type: Mapped[str | None] = mapped_column(String(32))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    debtor_id: Mapped[int | None] = mapped_column(
        ForeignKey("debtors.id", ondelete="SET NULL"), index=True
    )
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Letter(TimestampMixin, Base):
    """A formal letter (mise en demeure) queued for registered mail."""

    __tablename__ = "letters"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32), default="mise_en_demeure")
    language: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default=LetterStatus.QUEUED, index=True)
    invoice_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    principal_minor: Mapped[MinorUnits]
    interest_minor: Mapped[MinorUnits] = mapped_column(default=0)
    indemnity_minor: Mapped[MinorUnits] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(String(3))
    deadline: Mapped[date]
    pdf_path: Mapped[str | None] = mapped_column(String(500))
    tracking_number: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None]  # when it was marked posted
    posted_by: Mapped[str | None] = mapped_column(String(320))  # audit actor, e.g. user:<email>


class PaymentLink(TimestampMixin, Base):
    """A single-use, expiring link to pay. Only the SHA-256 of the token is stored."""

    __tablename__ = "payment_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # balance, installment, promise
    amount_minor: Mapped[MinorUnits]
    currency: Mapped[str] = mapped_column(String(3))
    invoice_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    installment_id: Mapped[int | None] = mapped_column(ForeignKey("installments.id"))
    expires_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]
    provider: Mapped[str | None] = mapped_column(String(16))
    provider_session_id: Mapped[str | None] = mapped_column(String(128), unique=True)


class VersionedDocument(Base):
    """Admin-editable configuration (dunning policy, plan limits, wording), one row per version."""

    __tablename__ = "versioned_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)  # policy, wording
    version: Mapped[int]
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    comment: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    active: Mapped[bool] = mapped_column(default=False, index=True)
