"""The assistant's replies that failed to send for a transient reason go out later, once.

A reply is sent at once by its path (an e-mail answer in the thread, `mail/inbound.py`; the
replayed answers of `replay.py`, by SMS/WhatsApp through the Twilio REST edge or by e-mail).
When the gateway raises a `DeliveryError`, the path calls `after_failure`:

- transient (`retryable`: SMTP 4xx, connection refused/reset, timeout; Twilio 429/5xx, network)
  and the gateway stored the attempt: a `ReplyRetry` row for that Message, due after
  REPLY_RETRY_BASE_SECONDS;
- permanent (SMTP 5xx, invalid number, Twilio 21211/21610...), or no row to send again: the
  failed row stays in the transcript (marked failed) and the conversation goes to a collector
  (handoff `reply_undelivered`), unless the address is now opted out (then nothing more).

The worker's `retry_due` (job `conversations.retry_replies`) sends the due rows again:

1. each row is claimed by a conditional UPDATE (`pending` and due -> `sending`, with a lease) and
   committed before anything is sent: a second worker's UPDATE matches nothing, so one sends;
2. the contact rules are checked again at the attempt (`compliance.check_contact`): an opt-out or
   a collector taking the conversation cancels it; a time block (quiet hours, Sunday, public
   holiday) moves it to the next window without spending an attempt; the dunning pressure rules
   (caps, gaps) do not hold back an answer to the debtor's own message;
3. the same Message is sent again: for e-mail with the same idempotency key, so the same
   Message-ID (`mail.gateway` re-claims its failed row); for a text the same row through
   `OutboundGateway.resend_text` (Twilio has no idempotency key: the claim is what makes it once);
4. a transient failure waits `exponential(attempts)` (doubling, at most REPLY_RETRY_MAX_SECONDS);
   a permanent one, or REPLY_RETRY_MAX_ATTEMPTS sends, fail it for good and hand off.

A claim whose worker died mid-send (`sending` past its lease) is never sent blindly again (the
provider may have accepted it): failed for good, and a collector checks.

The answer to an unknown sender's e-mail (an address not on file, which gets the identity-check
answer and no debt detail) has no conversation, Message or Contact: the mail edge calls
`after_unknown_sender_failure`, and the retry row keeps the recipient and the e-mail's bytes,
sent again unchanged (same Message-ID) under `check_unknown_address` (an opted-out address
cancels; the default jurisdiction's hours, since the sender may be a debtor). Failed for good,
it leaves a task (`unknown_sender_unanswered`) for a person instead of a handoff.

A first send can die mid-send too (`recover_unsent`, run by the same job). The e-mail gateway
commits the reply's row `queued` (its Message-ID claimed) before the SMTP session, and records
the server's answer after it: a worker or web process that stops in between leaves the row
`queued` for ever, never sent again (its Message-ID is taken) and shown to nobody. SMTP has no
idempotency key and no way to ask whether the server took the message before the connection
died, so a resend could deliver it twice with no way to know: such a row is never resent. Once
its claim is older than LEASE and no live process holds its sender's lock (`turn_lock.sending`,
taken by the gateway before the claim's commit, released by the kernel or the database when the
holder dies), it is marked failed (`outcome_unknown`, not retryable) and the conversation goes to
a collector (handoff `reply_undelivered`, its Message-ID named so the mail server's log tells
whether it went), as for a retry claim left by a dead worker. A row some live process is still
sending is left alone however long it takes. Only replies in a thread (the assistant's or a
collector's answers): a dunning reminder left queued is the dispatcher's (`release_stale`: a
duplicate reminder is worse than a missed one). Texts need no sweep: the Twilio edge writes the
row and its Message SID in the transaction that follows Twilio's answer, so a crash leaves no
committed `queued` text without a SID (a reply retry's own claim covers a resend).

The unknown sender's first send is covered the same way: the mail edge writes its retry row
`sending` (with the lease) in the commit that precedes the SMTP session
(`unknown_sender_in_flight`) and removes it once the server has answered; a process that dies in
between leaves it to `_release_stale`, which fails it (`outcome_unknown`) and leaves the task for
a person.

Personal data: an unknown sender's row that ends (sent, cancelled, failed for good) keeps
nothing of the stranger: the address and the e-mail's bytes are dropped at once, and the address
cut out of the last error (a failed one's task keeps what a person needs to answer). The
retention job deletes unknown-sender rows older than RETENTION_CONVERSATION_DAYS whatever their
state, and a debtor's erasure deletes those addressed to one of their addresses
(`relance/privacy`).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session, sessionmaker

from relance import audit
from relance.backoff import exponential
from relance.compliance.service import Decision, check_contact, check_unknown_address
from relance.contacts import service as contacts
from relance.conversations.ports import DeliveryError, OutboundMail, get_gateway, get_mail_gateway
from relance.conversations.turn_lock import has_live_owner
from relance.db.base import utcnow
from relance.db.models import Contact, Conversation, Message, ReplyRetry, Task
from relance.db.models.enums import Author, Channel, Direction, MessageStatus
from relance.handoff.service import create_handoff
from relance.policy.service import active_policy
from relance.settings import get_settings

log = logging.getLogger(__name__)

HANDOFF_REASON = "reply_undelivered"
UNANSWERED_TASK = "unknown_sender_unanswered"  # an unknown sender's answer failed for good
LEASE = timedelta(minutes=5)  # a claimed retry is not taken again before this
# How far back `recover_unsent` looks for replies left queued (by creation, an indexed column):
# a reply row is claimed seconds after it is stored, and the sweep runs every 30 seconds.
UNSENT_HORIZON = timedelta(days=30)
OUTCOME_UNKNOWN = "outcome_unknown"
PENDING, SENDING, SENT, FAILED, CANCELLED = "pending", "sending", "sent", "failed", "cancelled"
# Caps and gaps between dunning contacts: a reply answers the debtor's own message (the reply
# sent at once is not held back by them either).
NOT_FOR_REPLIES = frozenset({"frequency_cap", "min_gap", "call_cap", "after_conversation"})
# The debtor opted out, or a collector owns the conversation: the reply is no longer ours to send.
CANCELS = frozenset({"opted_out", "handed_off"})


def backoff(attempts: int) -> timedelta:
    settings = get_settings()
    return exponential(
        attempts,
        timedelta(seconds=settings.reply_retry_base_seconds),
        timedelta(seconds=settings.reply_retry_max_seconds),
    )


def after_failure(
    session: Session,
    *,
    conversation: Conversation,
    contact: Contact,
    error: DeliveryError,
    mail: OutboundMail | None = None,
) -> str:
    """A reply's first send failed: schedule its retry, or hand the conversation to a collector.
    Returns the outcome: `reply_retrying`, `reply_failed` or `reply_cancelled`. The caller
    commits (the failed row and the retry together)."""
    now = utcnow()
    if error.message_id is None or not error.retryable:
        return _final(session, conversation, contact, error.message_id, error)
    if get_settings().reply_retry_max_attempts <= 1:
        return _final(session, conversation, contact, error.message_id, error)
    if session.scalar(select(ReplyRetry.id).where(ReplyRetry.message_id == error.message_id)):
        return "reply_retrying"  # already scheduled (the same row failed through another path)
    failed = session.get(Message, error.message_id)
    assert failed is not None  # the gateway stored it in this transaction
    retry = ReplyRetry(
        message_id=error.message_id,
        contact_id=contact.id,
        channel=failed.channel,  # sms for a caller answered by SMS, whatever the contact row
        status=PENDING,
        attempts=1,
        next_attempt_at=now + backoff(1),
        mail_key=mail.idempotency_key if mail is not None else None,
        mail_rows=list(mail.reply_rows) if mail is not None and mail.reply_rows else None,
        last_error_code=error.code,
        last_error=str(error)[:500],
    )
    session.add(retry)
    session.flush()
    audit.record(
        session,
        actor="system",
        action="reply.retry_scheduled",
        entity=retry,
        debtor_id=conversation.debtor_id,
        message_id=error.message_id,
        error_code=error.code,
        next_attempt_at=retry.next_attempt_at,
    )
    return "reply_retrying"


def unknown_sender_in_flight(session: Session, *, address: str, mail_key: str, data: bytes) -> None:
    """The first send of an unknown sender's answer is about to start: its row, `sending` with
    the lease, goes in the commit that precedes the SMTP session (the gateway's), so a process
    that dies during the send leaves a trace (`_release_stale`: a person checks) instead of
    nothing. Removed by `unknown_sender_answered`, or turned into a retry by
    `after_unknown_sender_failure`."""
    session.add(
        ReplyRetry(
            channel=Channel.EMAIL,
            status=SENDING,
            attempts=1,
            next_attempt_at=utcnow() + LEASE,
            mail_key=mail_key,
            address=address,
            mail_bytes=data,
        )
    )
    session.flush()


def unknown_sender_answered(session: Session, *, mail_key: str) -> None:
    """The server took the first send: its in-flight row goes (the audit keeps the proof). A row
    the worker already failed as stale (a send slower than the lease) stays with its task."""
    session.execute(
        delete(ReplyRetry).where(
            ReplyRetry.mail_key == mail_key,
            ReplyRetry.message_id.is_(None),
            ReplyRetry.status == SENDING,
        )
    )


def after_unknown_sender_failure(
    session: Session, *, address: str, mail_key: str, data: bytes, error: DeliveryError
) -> str:
    """The answer to an unknown sender's e-mail (the identity-check answer, no debt detail)
    failed its first send. Transient: retried like the others, the same bytes (so the same
    Message-ID); permanent: a person is told by a task, there being no conversation to hand
    off. Returns `reply_retrying` or `reply_failed`; the caller commits."""
    retry = session.scalars(
        select(ReplyRetry).where(ReplyRetry.mail_key == mail_key, ReplyRetry.message_id.is_(None))
    ).first()
    if retry is not None and retry.status != SENDING:  # not this send's in-flight row
        return "reply_retrying" if retry.status == PENDING else "reply_failed"
    if not error.retryable or get_settings().reply_retry_max_attempts <= 1:
        if retry is not None:
            session.delete(retry)  # the task says what a person needs; nothing else is kept
        _unanswered(session, address, mail_key, error.code or "delivery_failed", 1)
        return "reply_failed"
    if retry is None:
        retry = ReplyRetry(channel=Channel.EMAIL, mail_key=mail_key, address=address)
        session.add(retry)
    retry.status, retry.attempts, retry.next_attempt_at = PENDING, 1, utcnow() + backoff(1)
    retry.mail_bytes = data
    retry.last_error_code, retry.last_error = error.code, str(error)[:500]
    session.flush()
    audit.record(
        session,
        actor="system",
        action="reply.retry_scheduled",
        entity=retry,
        address=address,
        mail_key=mail_key,
        error_code=error.code,
        next_attempt_at=retry.next_attempt_at,
    )
    return "reply_retrying"


def retry_due(
    factory: Callable[[], Session] | sessionmaker[Session],
    *,
    now: datetime | None = None,
    limit: int = 100,
) -> dict[str, int]:
    """Send the replies whose retry is due; each one in its own claimed unit of work."""
    now = now or utcnow()
    counts: Counter[str] = Counter()
    with factory() as session, session.begin():
        counts["stale"] = _release_stale(session, now)
        counts["unsent"] = recover_unsent(session, now)
        due = list(
            session.scalars(
                select(ReplyRetry.id)
                .where(ReplyRetry.status == PENDING, ReplyRetry.next_attempt_at <= now)
                .order_by(ReplyRetry.next_attempt_at, ReplyRetry.id)
                .limit(limit)
            )
        )
    for retry_id in due:
        counts[_attempt(factory, retry_id, now)] += 1
    return {k: v for k, v in counts.items() if v}


def retrying(session: Session, message_ids: list[int]) -> dict[int, datetime]:
    """Of these messages, those whose send the worker will try again, with when: the console
    shows them as retrying rather than failed (a failed one stays failed, and is handed off)."""
    if not message_ids:
        return {}
    rows = session.execute(
        select(ReplyRetry.message_id, ReplyRetry.next_attempt_at).where(
            ReplyRetry.message_id.in_(message_ids), ReplyRetry.status.in_((PENDING, SENDING))
        )
    ).all()
    return {message_id: when for message_id, when in rows if message_id is not None}


def recover_unsent(session: Session, now: datetime) -> int:
    """E-mail replies left `queued` by a process that died between the gateway's pre-SMTP commit
    and the server's answer: failed (`outcome_unknown`) and handed to a collector, never resent
    (see the module's docstring). Rows a live process is sending, claimed less than LEASE ago,
    or that a reply retry owns (its own lease covers them) are left alone. Returns how many."""
    rows = session.scalars(
        select(Message)
        .where(
            Message.direction == Direction.OUTBOUND,
            Message.channel == Channel.EMAIL,
            Message.status == MessageStatus.QUEUED,
            Message.created_at >= now - UNSENT_HORIZON,
            ~exists().where(ReplyRetry.message_id == Message.id),
        )
        .order_by(Message.id)
    ).all()
    recovered = 0
    for message in rows:
        extra = dict(message.extra or {})
        claimed_at = _claimed_at(extra)
        if claimed_at is None or not extra.get("reply") or claimed_at > now - LEASE:
            continue  # a reminder, a claim from before this rule, or one too recent
        if has_live_owner(session, message.id):
            continue  # its sender is alive (a slow SMTP server): its outcome will be recorded
        why = "the process stopped during the SMTP exchange: it may have gone out"
        taken = session.execute(
            update(Message)
            .where(Message.id == message.id, Message.status == MessageStatus.QUEUED)
            .values(
                status=MessageStatus.FAILED,
                error_code=OUTCOME_UNKNOWN,
                extra={**extra, "retryable": False, "error": why},
            )
            .returning(Message.id),
            execution_options={"synchronize_session": False},
        ).first()
        if taken is None:  # its sender recorded the outcome meanwhile
            continue
        session.refresh(message)
        recovered += 1
        conversation = message.conversation
        log.warning("e-mail reply %s left queued by a dead process: outcome unknown", message.id)
        audit.record(
            session,
            actor="system",
            action="mail.outcome_unknown",
            entity=message,
            debtor_id=conversation.debtor_id,
            message_id=message.provider_id,
        )
        address = message.address
        if address is None or contacts.is_opted_out(session, Channel.EMAIL, address):
            continue  # erased, or the debtor ended the channel: nobody is to answer by e-mail
        create_handoff(
            session,
            conversation,
            reason=HANDOFF_REASON,
            details=(
                f"reply e-mail {message.provider_id} interrupted during the send: it may have "
                "been delivered (see the mail server's log); answer the debtor if it was not"
            ),
            actor="system",
        )
    return recovered


def _claimed_at(extra: dict[str, object]) -> datetime | None:
    value = extra.get("claimed_at")
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


# -- one attempt -------------------------------------------------------------------------------
def _attempt(
    factory: Callable[[], Session] | sessionmaker[Session], retry_id: int, now: datetime
) -> str:
    session = factory()
    try:
        claimed = session.execute(
            update(ReplyRetry)
            .where(
                ReplyRetry.id == retry_id,
                ReplyRetry.status == PENDING,
                ReplyRetry.next_attempt_at <= now,
            )
            .values(status=SENDING, next_attempt_at=now + LEASE)
            .returning(ReplyRetry.id),
            execution_options={"synchronize_session": False},
        ).first()
        session.commit()  # the claim is durable before anything is sent
        if claimed is None:
            return "taken"  # another worker has it, or it is no longer due
        try:
            outcome = _send(session, retry_id, now)
            session.commit()
            return outcome
        except Exception as exc:
            # Unknown state (the provider may have accepted it): never sent blindly again.
            log.exception("reply retry %s failed", retry_id)
            session.rollback()
            retry = session.get(ReplyRetry, retry_id)
            if retry is not None:
                _give_up(session, retry, "retry_error", f"{type(exc).__name__}: {exc}")
                session.commit()
            return "error"
    finally:
        session.close()


def _send(session: Session, retry_id: int, now: datetime) -> str:
    retry = session.get(ReplyRetry, retry_id)
    assert retry is not None
    session.refresh(retry)
    message = retry.message
    if message is None:
        return _send_to_unknown_sender(session, retry, now)
    conversation = message.conversation
    contact = session.get(Contact, retry.contact_id)
    assert contact is not None and conversation.debtor is not None  # both cascade the retry
    decision = check_contact(
        session,
        debtor=conversation.debtor,
        contact=contact,
        channel=retry.channel,
        now=now,
        policy=active_policy(session),
    )
    held = _held(session, retry, decision)
    if held is not None:
        return held
    try:
        if retry.channel == Channel.EMAIL:
            _resend_mail(session, retry, message, conversation, contact)
        else:
            get_gateway().resend_text(session, message=message, contact=contact)
    except DeliveryError as exc:
        return _failed_again(session, retry, exc, now, contact)
    retry.attempts += 1
    _close(session, retry, SENT, None, None)
    return "sent"


def _send_to_unknown_sender(session: Session, retry: ReplyRetry, now: datetime) -> str:
    """The identity-check answer to an address not on file: the same bytes again, under the
    rules for someone not on file (`check_unknown_address`: no opt-out, the default windows)."""
    assert retry.address is not None and retry.mail_bytes is not None
    decision = check_unknown_address(session, channel=retry.channel, address=retry.address, now=now)
    held = _held(session, retry, decision)
    if held is not None:
        return held
    try:
        get_mail_gateway().answer_unknown_sender(
            session, recipient=retry.address, data=retry.mail_bytes
        )
    except DeliveryError as exc:
        return _failed_again(session, retry, exc, now, None)
    retry.attempts += 1
    _close(session, retry, SENT, None, None)
    return "sent"


def _held(session: Session, retry: ReplyRetry, decision: Decision) -> str | None:
    """What the contact rules make of this attempt: `cancelled`, `failed` (a block that never
    lifts by itself), `deferred` (a time block: not an attempt, no backoff), or None to send."""
    blocks = [b for b in decision.blocks if b.code not in NOT_FOR_REPLIES]
    cancelled = [b for b in blocks if b.code in CANCELS]
    if cancelled:
        _close(session, retry, CANCELLED, cancelled[0].code, cancelled[0].explanation)
        return "cancelled"
    if not blocks:
        return None
    retry_at = Decision(blocks=blocks).retry_at
    if retry_at is None:  # bounced, wrong person, no shared window: a person answers
        _give_up(session, retry, blocks[0].code, Decision(blocks=blocks).explain())
        return "failed"
    retry.status, retry.next_attempt_at = PENDING, retry_at
    log.info("reply retry %s waits until %s: %s", retry.id, retry_at, blocks[0].code)
    return "deferred"


def _failed_again(
    session: Session,
    retry: ReplyRetry,
    exc: DeliveryError,
    now: datetime,
    contact: Contact | None,
) -> str:
    retry.attempts += 1
    retry.last_error_code, retry.last_error = exc.code, str(exc)[:500]
    if exc.retryable and retry.attempts < get_settings().reply_retry_max_attempts:
        retry.status, retry.next_attempt_at = PENDING, now + backoff(retry.attempts)
        return "retry"
    if contact is not None and _opted_out(session, contact):  # the carrier said unsubscribed
        _close(session, retry, CANCELLED, "opted_out", str(exc))
        return "cancelled"
    _give_up(session, retry, exc.code or "delivery_failed", str(exc))
    return "failed"


def _resend_mail(
    session: Session,
    retry: ReplyRetry,
    message: Message,
    conversation: Conversation,
    contact: Contact,
) -> None:
    """The same e-mail: the same idempotency key (so Message-ID) and the same paragraphs, read
    back from the reply rows it carries."""
    assert retry.mail_key is not None
    rows = tuple(retry.mail_rows or [message.id])
    bodies = [m.body for m in (session.get(Message, i) for i in rows) if m is not None]
    mail = OutboundMail(
        idempotency_key=retry.mail_key,
        paragraphs=tuple(bodies),
        author=message.author or Author.BOT,
        reply_rows=rows if retry.mail_rows else (),
    )
    get_mail_gateway().send_mail(session, conversation=conversation, contact=contact, mail=mail)


# -- endings -----------------------------------------------------------------------------------
def _release_stale(session: Session, now: datetime) -> int:
    """Claims past their lease: the worker died mid-send; the outcome is unknown."""
    stale = list(
        session.scalars(
            select(ReplyRetry).where(ReplyRetry.status == SENDING, ReplyRetry.next_attempt_at < now)
        )
    )
    for retry in stale:
        _give_up(
            session,
            retry,
            OUTCOME_UNKNOWN,
            "the worker stopped during the send: it may have gone out, it is not sent again",
        )
    return len(stale)


def _close(
    session: Session, retry: ReplyRetry, status: str, code: str | None, why: str | None
) -> None:
    retry.status, retry.finished_at = status, utcnow()
    if code is not None:
        retry.last_error_code, retry.last_error = code[:32], (why or "")[:500]
    audit.record(
        session,
        actor="system",
        action=f"reply.retry_{status}",
        entity=retry,
        debtor_id=retry.message.conversation.debtor_id if retry.message is not None else None,
        message_id=retry.message_id,
        mail_key=retry.mail_key,
        attempts=retry.attempts,
        error_code=retry.last_error_code,
    )
    if retry.message_id is None:
        _forget_stranger(retry)


def _forget_stranger(retry: ReplyRetry) -> None:
    """An unknown sender's row that ended keeps nothing of them: not the address, not the
    e-mail (its bytes carry the address and their subject), not the address in the error."""
    address = retry.address
    retry.address = retry.mail_bytes = None
    if address and retry.last_error:
        retry.last_error = re.sub(
            re.escape(address), "[address]", retry.last_error, flags=re.IGNORECASE
        )


def _give_up(session: Session, retry: ReplyRetry, code: str, why: str) -> None:
    """Failed for good: the message still needs an answer, so a person gets it (a collector
    in the debtor's conversation; a task for an unknown sender, who has none)."""
    address, mail_key = retry.address, retry.mail_key  # `_close` forgets a stranger's address
    _close(session, retry, FAILED, code, why)
    if retry.message is None:
        assert address is not None and mail_key is not None
        _unanswered(session, address, mail_key, code, retry.attempts)
        return
    _hand_off(session, retry.message.conversation, retry.message_id, code, retry.attempts)


def _final(
    session: Session,
    conversation: Conversation,
    contact: Contact,
    message_id: int | None,
    error: DeliveryError,
) -> str:
    """A failure no retry can mend: the row stays failed in the transcript; a collector answers
    (nothing more when the address is now opted out: the debtor ended that channel)."""
    if _opted_out(session, contact):
        return "reply_cancelled"
    _hand_off(session, conversation, message_id, error.code or "delivery_failed", 1)
    return "reply_failed"


def _hand_off(
    session: Session,
    conversation: Conversation,
    message_id: int | None,
    code: str,
    attempts: int,
) -> None:
    log.warning(
        "reply %s to conversation %s not delivered (%s, %d attempts): handed to a collector",
        message_id,
        conversation.id,
        code,
        attempts,
    )
    create_handoff(
        session,
        conversation,
        reason=HANDOFF_REASON,
        details=f"reply not delivered ({code}, {attempts} attempt(s)): answer the debtor",
        actor="system",
    )


def _unanswered(session: Session, address: str, mail_key: str, code: str, attempts: int) -> None:
    """An unknown sender's e-mail whose answer could not be sent: a person looks at it (they
    may be a debtor writing from another address)."""
    log.warning(
        "answer to unknown sender %s not delivered (%s, %d attempts): task for a person",
        address,
        code,
        attempts,
    )
    session.add(
        Task(
            kind=UNANSWERED_TASK,
            details={
                "address": address,
                "mail_key": mail_key,
                "error_code": code,
                "attempts": attempts,
            },
        )
    )


def _opted_out(session: Session, contact: Contact) -> bool:
    return (
        contact.opted_out_at is not None
        or not contact.consent
        or contacts.is_opted_out(session, contact.channel, contact.address)
    )
