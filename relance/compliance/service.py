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


@dataclass(frozen=True)
class ContactFacts:
    """What the rules need to know from the database about one debtor, read beforehand.

    `check_contact` reads them for one debtor; the batched e-mail dispatch reads them for a
    whole batch with a few IN-queries (`load_contact_facts`). Both then apply the very same
    rules (`decide_contact`), so the two paths cannot drift apart.
    """

    conversation_mode: str | None = None  # None: no conversation yet
    identity_verified: bool = False
    has_outbound: bool = False
    inbound_addresses: frozenset[str] = frozenset()
    # When each recent dunning contact (group, not legal) was first sent, oldest first.
    sent_times: tuple[datetime, ...] = ()
    call_blocks: tuple[Block, ...] = ()  # Regulation F and the like: voice only


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
    conversation = session.scalars(
        select(Conversation).where(Conversation.debtor_id == debtor.id)
    ).first()
    since = now - timedelta(days=policy.contact.per_days)
    facts = ContactFacts(
        conversation_mode=conversation.mode if conversation is not None else None,
        identity_verified=conversation is not None
        and conversation.identity_verified_at is not None,
        has_outbound=_has_outbound(session, conversation),
        inbound_addresses=_spoken_from(session, conversation, contact),
        sent_times=_sent_times(session, [debtor.id], since).get(debtor.id, ()),
        call_blocks=tuple(
            _call_blocks(session, debtor, now, profile_for(debtor.jurisdiction))
            if channel == Channel.VOICE
            else ()
        ),
    )
    return decide_contact(
        facts, debtor=debtor, contact=contact, channel=channel, now=now, policy=policy
    )


def decide_contact(
    facts: ContactFacts,
    *,
    debtor: Debtor,
    contact: Contact | None,
    channel: str,
    now: datetime,
    policy: Policy,
) -> Decision:
    """The rules themselves, on facts already read: no database access, so a batch can judge
    each of its debtors in memory, and judge a send again after a wait at no cost."""
    profile = profile_for(debtor.jurisdiction)
    # Messages and calls only inside the debtor's chosen hours too (cut to the legal windows).
    hours = contact_profile(debtor.jurisdiction, debtor.contact_from, debtor.contact_until)
    decision = Decision()
    blocks = decision.blocks
    if channel != Channel.LETTER:
        blocks.extend(_contact_point_blocks(contact, channel))
        place = locate(debtor)  # every plausible zone, the address's holiday calendar
        blocks.extend(_window_blocks(hours, now, place, profile.code))
    if facts.conversation_mode == ConversationMode.HUMAN:
        blocks.append(Block("handed_off", "a collector owns the conversation"))
    blocks.extend(_pressure_blocks(facts.sent_times, now, policy))
    if channel == Channel.VOICE:
        blocks.extend(facts.call_blocks)
    decision.disclose_ai = not facts.has_outbound
    decision.may_disclose_details = facts.identity_verified and _has_spoken_from(
        facts.inbound_addresses, contact
    )
    return decision


def load_contact_facts(
    session: Session, debtor_ids: list[int], *, since: datetime
) -> dict[int, ContactFacts]:
    """`ContactFacts` for many debtors at once (four IN-queries, whatever their number), for
    judging e-mails: no voice facts. `since`: the earliest start of the pressure rules' period
    among the sends to judge (a fact older than a send's own period is ignored by the rule)."""
    conversations: dict[int | None, tuple[int | None, str | None, bool]] = {
        debtor_id: (conversation_id, mode, verified)
        for conversation_id, debtor_id, mode, verified in session.execute(
            select(
                Conversation.id,
                Conversation.debtor_id,
                Conversation.mode,
                Conversation.identity_verified_at.is_not(None),
            ).where(Conversation.debtor_id.in_(debtor_ids))
        )
    }
    conversation_ids = [c[0] for c in conversations.values()]
    outbound: set[int] = set()
    inbound: dict[int, set[str]] = {}
    if conversation_ids:
        outbound = set(
            session.scalars(
                select(Message.conversation_id)
                .where(
                    Message.conversation_id.in_(conversation_ids),
                    Message.direction == Direction.OUTBOUND,
                )
                .distinct()
            )
        )
        for conversation_id, address in session.execute(
            select(Message.conversation_id, Message.address)
            .where(
                Message.conversation_id.in_(conversation_ids),
                Message.direction == Direction.INBOUND,
                Message.address.is_not(None),
            )
            .distinct()
        ):
            if address is not None:
                inbound.setdefault(conversation_id, set()).add(address)
    sent = _sent_times(session, debtor_ids, since)
    facts = {}
    for debtor_id in debtor_ids:
        known, mode, verified = conversations.get(debtor_id, (None, None, False))
        facts[debtor_id] = ContactFacts(
            conversation_mode=mode,
            identity_verified=bool(verified),
            has_outbound=known in outbound,
            inbound_addresses=frozenset(inbound.get(known or 0, ())),
            sent_times=sent.get(debtor_id, ()),
        )
    return facts


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


def _sent_times(
    session: Session, debtor_ids: list[int], since: datetime
) -> dict[int, tuple[datetime, ...]]:
    """Per debtor, when each dunning contact since `since` was first sent, oldest first."""
    rows = session.execute(
        select(DunningAction.debtor_id, DunningAction.group_key, func.min(DunningAction.sent_at))
        .where(
            DunningAction.debtor_id.in_(debtor_ids),
            DunningAction.status == "sent",
            DunningAction.sent_at >= since,
            DunningAction.kind != "legal",
        )
        .group_by(DunningAction.debtor_id, DunningAction.group_key)
    ).all()
    times: dict[int, list[datetime]] = {}
    for debtor_id, _group, first in rows:
        if first is not None:
            times.setdefault(debtor_id, []).append(first)
    return {debtor_id: tuple(sorted(t)) for debtor_id, t in times.items()}


def _pressure_blocks(
    sent_times: tuple[datetime, ...], now: datetime, policy: Policy
) -> list[Block]:
    """Frequency cap and minimum gap between two dunning contacts to one debtor."""
    rules = policy.contact
    since = now - timedelta(days=rules.per_days)
    sent = [t for t in sent_times if t >= since]
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


def _spoken_from(
    session: Session, conversation: Conversation | None, contact: Contact | None
) -> frozenset[str]:
    """The contact's addresses (plain and WhatsApp) the debtor has written from, if any."""
    if conversation is None or contact is None:
        return frozenset()
    address = contact.address.removeprefix("whatsapp:")
    return frozenset(
        a
        for a in session.scalars(
            select(Message.address)
            .where(
                Message.conversation_id == conversation.id,
                Message.direction == Direction.INBOUND,
                Message.address.in_([address, f"whatsapp:{address}"]),
            )
            .limit(1)
        )
        if a is not None
    )


def _has_spoken_from(inbound_addresses: frozenset[str], contact: Contact | None) -> bool:
    """Debt details go only to an address the debtor has already answered from."""
    if contact is None or contact.status != ContactStatus.OK:
        return False
    address = contact.address.removeprefix("whatsapp:")
    return address in inbound_addresses or f"whatsapp:{address}" in inbound_addresses
