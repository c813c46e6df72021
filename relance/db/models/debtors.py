"""Debtors and their contact points (one row per channel address, with consent and opt-out)."""

from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from relance.db.base import Base, MinorUnits, TimestampMixin
from relance.db.models.enums import ContactStatus, Segment


class Debtor(TimestampMixin, Base):
    __tablename__ = "debtors"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_number: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(200))
    segment: Mapped[str] = mapped_column(String(16), default=Segment.CONSUMER)
    risk_class: Mapped[str] = mapped_column(String(16), default="standard")
    language: Mapped[str] = mapped_column(String(8), default="fr")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Paris")
    jurisdiction: Mapped[str] = mapped_column(String(8), default="FR")
    address_line: Mapped[str | None] = mapped_column(String(300))
    postcode: Mapped[str | None] = mapped_column(String(16))
    city: Mapped[str | None] = mapped_column(String(120))
    country: Mapped[str] = mapped_column(String(2), default="FR")
    email: Mapped[str | None] = mapped_column(String(254))
    # Legal identifiers, as e-invoices give them (relance/einvoice matches buyers by them).
    siren: Mapped[str | None] = mapped_column(String(9), index=True)
    siret: Mapped[str | None] = mapped_column(String(14), index=True)
    vat_number: Mapped[str | None] = mapped_column(String(32), index=True)
    credit_minor: Mapped[MinorUnits] = mapped_column(default=0)  # overpayments kept as credit
    # Set by the debtor on the portal (relance/contacts/service.py `set_preferences`): the planner
    # tries this channel first, and reminders go out only between these local times, always
    # inside the jurisdiction's legal contact windows as well.
    preferred_channel: Mapped[str | None] = mapped_column(String(16))
    contact_from: Mapped[time | None]
    contact_until: Mapped[time | None]

    contacts: Mapped[list[Contact]] = relationship(
        back_populates="debtor", cascade="all, delete-orphan", order_by="Contact.id"
    )

    @property
    def display_name(self) -> str:
        return self.company or self.name


class Contact(TimestampMixin, Base):
    """A way to reach a debtor on one channel. Address is E.164 (voice/sms), `whatsapp:+E164`, or a
    normalised e-mail address (up to 254 characters, RFC 5321)."""

    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    debtor_id: Mapped[int] = mapped_column(ForeignKey("debtors.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(254), index=True)
    consent: Mapped[bool] = mapped_column(default=True)
    opted_out_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default=ContactStatus.OK)
    failure_count: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime | None]

    debtor: Mapped[Debtor] = relationship(back_populates="contacts")

    @property
    def reachable(self) -> bool:
        return self.consent and self.opted_out_at is None and self.status == ContactStatus.OK
