"""Portal links (one debtor each) and the files a debtor attaches to a dispute."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from relance.db.base import Base, TimestampMixin


class PortalAccess(TimestampMixin, Base):
    """A personal portal link. Only the SHA-256 of its token is stored (`relance.secret_links`).

    `failed_attempts` counts wrong identity answers given through this link; at the limit the
    link is locked until `locked_until`, whatever is typed next. `session_epoch` is bumped by a
    revocation so every browser session opened with the link ends at once.

    `seed` is set on the link our own messages carry (`access.message_link`): its token is
    HMAC(secret_key, seed), so the next reminder can print the same link again while it is
    valid. The seed alone opens nothing; the table still holds no token.
    """

    __tablename__ = "portal_accesses"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    verified_at: Mapped[datetime | None]
    session_epoch: Mapped[int] = mapped_column(default=0)
    seed: Mapped[str | None] = mapped_column(String(64))


class PortalAttachment(TimestampMixin, Base):
    """A file the debtor attached to a dispute, kept owner-readable under `var/portal_files/`.

    The stored name is random; the debtor's file name is kept for display only.
    """

    __tablename__ = "portal_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    dispute_id: Mapped[int] = mapped_column(
        ForeignKey("disputes.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    stored_name: Mapped[str] = mapped_column(String(80), unique=True)
