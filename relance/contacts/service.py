"""Opt-out, opt-in and delivery-failure flags on contact points.

The channels set these flags; the dunning engine only reads `Contact.reachable`. Opt-out is per
channel address: a STOP by SMS stops texts to that number, not letters or another channel.
Every change is audited because consent is evidence.
"""

from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance import audit
from relance.compliance.profiles import narrowed, profile_for
from relance.db.base import utcnow
from relance.db.models import Contact, Debtor
from relance.db.models.enums import Channel, ContactStatus
from relance.errors import BadInput
from relance.languages import LANGUAGES
from relance.outbox.service import emit


def contact_for(session: Session, channel: str, address: str) -> Contact | None:
    """The contact row for exactly this channel and address."""
    return session.scalars(
        select(Contact).where(Contact.channel == channel, Contact.address == address)
    ).first()


def ensure_contact(session: Session, debtor: Debtor, channel: str, address: str) -> Contact:
    """The debtor's row for this channel, created when the debtor reached us on a shared number."""
    contact = contact_for(session, channel, address)
    if contact is None:
        contact = Contact(debtor_id=debtor.id, channel=channel, address=address)
        session.add(contact)
        session.flush()
    return contact


def is_opted_out(session: Session, channel: str, address: str) -> bool:
    """True when any row for this channel and address withdrew consent."""
    row = session.scalars(
        select(Contact.id).where(
            Contact.channel == channel,
            Contact.address == address,
            (Contact.opted_out_at.is_not(None)) | (Contact.consent.is_(False)),
        )
    ).first()
    return row is not None


def opt_out(session: Session, contact: Contact, *, source: str, keyword: str | None = None) -> bool:
    """Record the opt-out once. Returns False when the contact was already opted out."""
    if contact.opted_out_at is not None:
        return False
    contact.opted_out_at = utcnow()
    audit.record(
        session,
        actor="debtor",
        action="contact.opted_out",
        entity=contact,
        debtor_id=contact.debtor_id,
        channel=contact.channel,
        address=contact.address,
        source=source,
        keyword=keyword,
    )
    emit(session, "contact.opted_out", debtor_id=contact.debtor_id, channel=contact.channel)
    return True


def opted_out_by_keyword(session: Session, contact: Contact) -> bool:
    """Whether the contact's current opt-out is a carrier keyword (STOP), not a sentence.

    The carrier owns a keyword opt-out: Twilio refuses every later message to that number
    (error 21610) until START. An opt-out said in conversation ("stop bothering me") is ours.
    """
    from relance.db.models import AuditEvent

    if contact.opted_out_at is None:
        return False
    event = session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.action == "contact.opted_out",
            AuditEvent.entity_type == Contact.__tablename__,
            AuditEvent.entity_id == str(contact.id),
        )
        .order_by(AuditEvent.id.desc())
        .limit(1)
    ).first()
    return bool(event is not None and event.details.get("keyword"))


def opt_in(session: Session, contact: Contact, *, source: str, keyword: str | None = None) -> bool:
    """Lift an opt-out. Returns False when the contact was not opted out."""
    if contact.opted_out_at is None:
        return False
    contact.opted_out_at = None
    audit.record(
        session,
        actor="debtor",
        action="contact.opted_in",
        entity=contact,
        debtor_id=contact.debtor_id,
        channel=contact.channel,
        address=contact.address,
        source=source,
        keyword=keyword,
    )
    return True


def record_failure(
    session: Session, contact: Contact, *, error_code: str | None, reference: str | None
) -> None:
    """A message or call failed: flag the contact so the dunning engine tries another channel."""
    contact.failure_count += 1
    contact.last_failure_at = utcnow()
    if contact.status == ContactStatus.OK:
        contact.status = ContactStatus.FAILING
    audit.record(
        session,
        actor="system",
        action="contact.delivery_failed",
        entity=contact,
        debtor_id=contact.debtor_id,
        channel=contact.channel,
        error_code=error_code,
        reference=reference,
        failure_count=contact.failure_count,
    )


def record_success(session: Session, contact: Contact, *, sent_at: datetime | None) -> None:
    """A delivery proves the address works again, if it was sent after the last known failure."""
    if contact.status != ContactStatus.FAILING:
        return
    if (
        contact.last_failure_at is not None
        and sent_at is not None
        and sent_at <= contact.last_failure_at
    ):
        return  # an older message delivered late says nothing about the failure since
    contact.status = ContactStatus.OK
    contact.failure_count = 0
    audit.record(
        session,
        actor="system",
        action="contact.delivery_recovered",
        entity=contact,
        debtor_id=contact.debtor_id,
        channel=contact.channel,
    )


# Channels a debtor may prefer for reminders (letters are the law's last step, not a choice).
PREFERABLE_CHANNELS = (Channel.SMS, Channel.WHATSAPP, Channel.VOICE)


def set_preferences(
    session: Session,
    debtor: Debtor,
    *,
    channel: str | None,
    language: str,
    contact_from: time | None,
    contact_until: time | None,
    actor: str,
) -> None:
    """The debtor's own choices: the planner tries `channel` first among a stage's usable
    channels, every message speaks `language`, and reminders go out only between the two local
    times, inside the jurisdiction's legal windows (`relance.compliance.profiles.contact_profile`).

    Hours that leave no legal window at all are refused rather than ignored later.
    """
    if channel is not None:
        if channel not in PREFERABLE_CHANNELS:
            raise BadInput("bad_channel", f"unknown channel {channel!r}")
        if not any(c.channel == channel for c in debtor.contacts):
            raise BadInput("channel_without_contact", f"no {channel} contact on file")
    if language not in LANGUAGES:
        raise BadInput("bad_language", f"unsupported language {language!r}")
    if (contact_from is None) != (contact_until is None):
        raise BadInput("bad_hours", "give both times, or neither")
    if contact_from is not None and contact_until is not None:
        if contact_from >= contact_until:
            raise BadInput("bad_hours", "the start time must be before the end time")
        if narrowed(profile_for(debtor.jurisdiction), contact_from, contact_until) is None:
            windows = ", ".join(
                f"{s:%H:%M}-{e:%H:%M}" for s, e in profile_for(debtor.jurisdiction).windows
            )
            raise BadInput(
                "hours_outside_legal_windows",
                f"these hours are outside the hours we may contact you ({windows})",
            )
    debtor.preferred_channel = channel
    debtor.language = language
    debtor.contact_from = contact_from
    debtor.contact_until = contact_until
    audit.record(
        session,
        actor=actor,
        action="debtor.preferences_set",
        entity=debtor,
        debtor_id=debtor.id,
        channel=channel,
        language=language,
        contact_from=contact_from.isoformat() if contact_from else None,
        contact_until=contact_until.isoformat() if contact_until else None,
    )
