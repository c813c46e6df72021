"""The check run before every outbound contact, and the explanation when it says no.

A `Decision` lists every rule that blocks (not only the first) so a collector or the timeline
preview can say exactly why a debtor was not contacted, and when the earliest retry makes sense.
Letters go by post: only the contact-pressure rules apply to them, not the phone windows.
The windows are judged in every zone the debtor plausibly is in (`location.locate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from relance.compliance.location import Place, locate
from relance.compliance.profiles import JurisdictionProfile, contact_profile, profile_for
from relance.compliance.windows import common_window_start, window_block
from relance.db.models import Contact, Conversation, Debtor, DunningAction, Message
from relance.db.models.enums import Channel, ContactStatus, ConversationMode, Direction
from relance.policy.schema import Policy
from relance.settings import get_settings


@dataclass(frozen=True)
class Block:
    code: str
    explanation: str
    until: datetime | None = None  # None: blocked until something changes (opt-in, new number)


@dataclass
class Decision:
    blocks: list[Block] = field(default_factory=list)
    disclose_ai: bool = False  # first contact: say it is an automated assistant
    # Debt details (name, amount, invoices, pay link) only to a contact point the debtor has
    # answered from after passing the identity check; otherwise a discreet reminder is sent.
    may_disclose_details: bool = False

    @property
    def allowed(self) -> bool:
        return not self.blocks

    @property
    def codes(self) -> list[str]:
        return [b.code for b in self.blocks]

    @property
    def retry_at(self) -> datetime | None:
        """When every block will have lifted, or None if one never lifts by itself."""
        if not self.blocks or any(b.until is None for b in self.blocks):
            return None
        return max(b.until for b in self.blocks if b.until is not None)

    def explain(self) -> str:
        if self.allowed:
            return "allowed"
        return "; ".join(f"{b.code}: {b.explanation}" for b in self.blocks)


def check_contact(
    session: Session,
    *,
    debtor: Debtor,
    contact: Contact | None,
    channel: str,
    now: datetime,
    policy: Policy,
) -> Decision:
    """Every rule that applies to contacting `debtor` on `channel` at `now`."""
    profile = profile_for(debtor.jurisdiction)
    # Messages and calls only inside the debtor's chosen hours too (cut to the legal windows).
    hours = contact_profile(debtor.jurisdiction, debtor.contact_from, debtor.contact_until)
    decision = Decision()
    blocks = decision.blocks
    if channel != Channel.LETTER:
        blocks.extend(_contact_point_blocks(contact, channel))
        place = locate(debtor)  # every plausible zone, the address's holiday calendar
        blocks.extend(_window_blocks(hours, now, place, profile.code))
    conversation = session.scalars(
        select(Conversation).where(Conversation.debtor_id == debtor.id)
    ).first()
    if conversation is not None and conversation.mode == ConversationMode.HUMAN:
        blocks.append(Block("handed_off", "a collector owns the conversation"))
    blocks.extend(_pressure_blocks(session, debtor, now, policy))
    if channel == Channel.VOICE:
        blocks.extend(_call_blocks(session, debtor, now, profile))
    decision.disclose_ai = not _has_outbound(session, conversation)
    decision.may_disclose_details = (
        conversation is not None
        and conversation.identity_verified_at is not None
        and _has_spoken_from(session, conversation, contact)
    )
    return decision


def check_unknown_address(
    session: Session, *, channel: str, address: str, now: datetime
) -> Decision:
    """The rules for writing to someone not on file: the answer to an unknown sender's e-mail
    (the identity-check answer), when it is sent again after a failed first send.

    Never a debt detail (`may_disclose_details` stays False: who writes is not known); not to
    an address that opted out on any debtor's record; and inside the contact windows of the
    default jurisdiction in the default time zone, since the sender may well be a debtor. The
    dunning pressure rules belong to debtors and do not apply.
    """
    decision = Decision()
    opted_out = session.scalar(
        select(Contact.id)
        .where(
            Contact.channel == channel,
            Contact.address == address,
            Contact.opted_out_at.is_not(None) | Contact.consent.is_(False),
        )
        .limit(1)
    )
    if opted_out is not None:
        decision.blocks.append(Block("opted_out", f"{address} opted out of {channel}"))
    profile = profile_for(None)
    place = Place.single(get_settings().default_timezone)
    decision.blocks.extend(_window_blocks(profile, now, place, profile.code))
    return decision


def _window_blocks(
    hours: JurisdictionProfile, now: datetime, place: Place, law: str
) -> list[Block]:
    """Outside the contact hours: blocked until the next instant inside them in every zone."""
    window = window_block(hours, now, place)
    if not window:
        return []
    until = common_window_start(hours, now, place)
    if until is not None:
        return [Block(window[0], window[1], until)]
    return [
        Block(
            "no_common_window",
            f"{window[1]}; the plausible zones ({place.describe()}) share no {law} contact "
            "window: correct the debtor's address, phone or time zone",
        )
    ]


def _contact_point_blocks(contact: Contact | None, channel: str) -> list[Block]:
    if contact is None:
        return [Block("no_contact", f"no {channel} contact point")]
    blocks = []
    if contact.opted_out_at is not None or not contact.consent:
        when = f" on {contact.opted_out_at:%Y-%m-%d}" if contact.opted_out_at else ""
        blocks.append(Block("opted_out", f"the debtor opted out of {channel}{when}"))
    if contact.status == ContactStatus.WRONG_PERSON:
        blocks.append(Block("wrong_person", f"{contact.address} belongs to someone else"))
    if contact.status == ContactStatus.BOUNCED:
        # A hard bounce (DSN): the mailbox does not exist; the next channel is tried instead.
        blocks.append(Block("bounced", f"{contact.address} bounced: the address is undeliverable"))
    return blocks


def _pressure_blocks(
    session: Session, debtor: Debtor, now: datetime, policy: Policy
) -> list[Block]:
    """Frequency cap and minimum gap between two dunning contacts to one debtor."""
    rules = policy.contact
    since = now - timedelta(days=rules.per_days)
    rows = session.execute(
        select(DunningAction.group_key, func.min(DunningAction.sent_at))
        .where(
            DunningAction.debtor_id == debtor.id,
            DunningAction.status == "sent",
            DunningAction.sent_at >= since,
            DunningAction.kind != "legal",
        )
        .group_by(DunningAction.group_key)
    ).all()
    sent = sorted(t for _, t in rows if t is not None)
    blocks = []
    if len(sent) >= rules.max_contacts:
        until = sent[len(sent) - rules.max_contacts] + timedelta(days=rules.per_days)
        blocks.append(
            Block(
                "frequency_cap",
                f"{len(sent)} contacts in the last {rules.per_days} days "
                f"(cap {rules.max_contacts})",
                until,
            )
        )
    if sent and rules.min_gap_hours and sent[-1] > now - timedelta(hours=rules.min_gap_hours):
        blocks.append(
            Block(
                "min_gap",
                f"last contact {sent[-1]:%Y-%m-%d %H:%M} UTC, less than "
                f"{rules.min_gap_hours:g} h ago",
                sent[-1] + timedelta(hours=rules.min_gap_hours),
            )
        )
    return blocks


def _debtor_messages(debtor: Debtor) -> Select[datetime]:
    return (
        select(Message.created_at)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.debtor_id == debtor.id, Message.channel == Channel.VOICE)
    )


def _call_blocks(
    session: Session, debtor: Debtor, now: datetime, profile: JurisdictionProfile
) -> list[Block]:
    """US Regulation F: 7 call attempts in 7 days, and 7 quiet days after a phone conversation."""
    blocks = []
    if profile.max_calls is not None:
        since = now - timedelta(days=profile.call_window_days)
        calls = sorted(
            session.scalars(
                _debtor_messages(debtor).where(
                    Message.direction == Direction.OUTBOUND, Message.created_at >= since
                )
            )
        )
        if len(calls) >= profile.max_calls:
            until = calls[len(calls) - profile.max_calls] + timedelta(days=profile.call_window_days)
            blocks.append(
                Block(
                    "call_cap",
                    f"{len(calls)} call attempts in {profile.call_window_days} days "
                    f"(limit {profile.max_calls} in {profile.code})",
                    until,
                )
            )
    if profile.quiet_days_after_conversation is not None:
        since = now - timedelta(days=profile.quiet_days_after_conversation)
        last_talk = session.scalar(
            select(func.max(Message.created_at))
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(
                Conversation.debtor_id == debtor.id,
                Message.channel == Channel.VOICE,
                Message.direction == Direction.INBOUND,
                Message.created_at >= since,
            )
        )
        if last_talk is not None:
            blocks.append(
                Block(
                    "after_conversation",
                    f"phone conversation on {last_talk:%Y-%m-%d}: no call for "
                    f"{profile.quiet_days_after_conversation} days ({profile.code})",
                    last_talk + timedelta(days=profile.quiet_days_after_conversation),
                )
            )
    return blocks


def _has_outbound(session: Session, conversation: Conversation | None) -> bool:
    if conversation is None:
        return False
    return (
        session.scalar(
            select(Message.id)
            .where(
                Message.conversation_id == conversation.id,
                Message.direction == Direction.OUTBOUND,
            )
            .limit(1)
        )
        is not None
    )


def _has_spoken_from(
    session: Session, conversation: Conversation | None, contact: Contact | None
) -> bool:
    """Debt details go only to an address the debtor has already answered from."""
    if conversation is None or contact is None or contact.status != ContactStatus.OK:
        return False
    address = contact.address.removeprefix("whatsapp:")
    return (
        session.scalar(
            select(Message.id)
            .where(
                Message.conversation_id == conversation.id,
                Message.direction == Direction.INBOUND,
                Message.address.in_([address, f"whatsapp:{address}"]),
            )
            .limit(1)
        )
        is not None
    )
