"""What the core needs from the channel edges, as protocols.

`relance` must not import messaging/, voice/ or mail/ (arrows point inward), yet the dunning
dispatcher, the ledger (thank-you message) and the console (collector reply) must send things, and
the worker and the CLI must read the replies mailbox (IMAP). They ask for the gateways and the
poller here; the process assembly (`relance.wiring`) installs the Twilio, SMTP and IMAP
implementations.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from sqlalchemy.orm import Session

from relance.db.models import Contact, Conversation, Message


class DeliveryError(Exception):
    """Sending failed. `retryable` errors (429, 5xx, timeouts) are retried with backoff;
    hard ones (invalid number, opted out at the carrier) move on to the next channel.

    A transport failure, not a refusal, so not a RelanceError: the dunning engine retries or
    moves on by `retryable`; the console turns it into `Unavailable`/`Conflict("delivery_failed")`
    for the collector (console/casework.py)."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        code: str | None = None,
        message_id: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code
        # The outbound Message row the gateway stored for the failed attempt (None: nothing was
        # stored, e.g. refused before any send): what a retry sends again (reply_retry.py).
        self.message_id = message_id


class OutboundGateway(Protocol):
    def send_text(
        self,
        session: Session,
        *,
        conversation: Conversation,
        contact: Contact,
        text: str,
        author: str,
        first_contact_template: bool = False,
    ) -> Message:
        """Send an SMS/WhatsApp text, store it as an outbound Message (status queued/sent)."""
        ...

    def place_call(
        self, session: Session, *, conversation: Conversation, contact: Contact, purpose: str
    ) -> Message:
        """Start an outbound voice call; the call flow is driven by the voice webhooks."""
        ...

    def resend_text(self, session: Session, *, message: Message, contact: Contact) -> Message:
        """Send a failed outbound text `message` again, on the same row (no new Message): the
        reply retry's attempt. Raises DeliveryError like `send_text`."""
        ...


@dataclass(frozen=True)
class OutboundMail:
    """One e-mail the core wants sent; the mail edge renders, signs and delivers it.

    `idempotency_key` makes the send happen once: a retried job (or a second worker) with the
    same key gets the message already sent back, never a second e-mail. `paragraphs` are texts
    already rendered from the wording (the reminder the assistant answered with, a collector's
    reply); the edge adds the subject, payment button, creditor identity, legal mentions and the
    unsubscribe link from the `utter_mail_*` wording.

    """

    idempotency_key: str
    paragraphs: tuple[str, ...]
    author: str = "bot"
    stage: str | None = None  # the policy stage's bot_stage; None for a reply in the thread
    tone: str | None = None
    invoice_ids: tuple[int, ...] = ()
    letter_id: int | None = None  # the formal notice whose PDF goes attached
    discreet: bool = False  # no amount, invoice or attachment (address not confirmed yet)
    # Reply rows already stored by the conversation path, in order: the first carries the e-mail
    # (its Message-ID), the others are marked sent with it. Empty: the gateway stores one row.
    reply_rows: tuple[int, ...] = ()


class MailGateway(Protocol):
    def send_mail(
        self, session: Session, *, conversation: Conversation, contact: Contact, mail: OutboundMail
    ) -> Message:
        """Send one e-mail (threaded in the debtor's conversation), stored as an outbound
        Message with its evidence; raises DeliveryError like the text gateway."""
        ...

    def answer_unknown_sender(self, session: Session, *, recipient: str, data: bytes) -> str:
        """Send the answer to an unknown sender's e-mail (composed by the mail edge, no debt
        detail), byte for byte: its first send and the reply retry's. Commits the caller's
        work first (no transaction is open during the SMTP exchange). Returns the server's
        answer; raises DeliveryError."""
        ...


@dataclass
class PreparedMail:
    """One e-mail of a batch, composed, its outbound row written (the caller commits it before
    `deliver`): plain values only, so nothing reads the database during the SMTP exchange."""

    message_id: str  # the Message-ID header
    row_id: int  # the outbound Message row
    conversation_id: int
    debtor_id: int | None
    contact_id: int
    recipient: str
    data: bytes
    extra: dict[str, object]
    author: str
    already_sent: bool = False  # an earlier run sent it: nothing goes out again
    smtp_code: int | None = None
    smtp_response: str | None = None
    sent_at: datetime | None = None
    error: DeliveryError | None = None


@runtime_checkable
class BatchMailGateway(MailGateway, Protocol):
    """A mail gateway that sends many e-mails with one transaction before SMTP and one after
    (the dunning dispatcher's e-mail batches) instead of several per e-mail."""

    def prepare_mails(
        self, session: Session, items: list[tuple[Conversation, Contact, OutboundMail]]
    ) -> list[PreparedMail | Exception]:
        """Claim and compose each e-mail (the rows flushed, not committed): a PreparedMail, or
        the error that stopped it (a DeliveryError for an e-mail already attempted)."""
        ...

    def deliver(self, mail: PreparedMail) -> None:
        """Send one prepared e-mail over SMTP (no database access); sets its `smtp_*` and
        `sent_at`, or `error` to the DeliveryError, which is also raised."""
        ...

    def record_mails(self, session: Session, mails: list[PreparedMail]) -> None:
        """Keep the proof of the e-mails sent and the errors of the others (not committed)."""
        ...


@dataclass
class MailboxPollReport:
    """What one poll of the replies mailbox did: the worker logs it, `relance mail poll` prints it.

    `outcomes` counts the handled messages by the inbound path's status (answered, duplicate,
    bounce, auto_reply, opted_out...); `rejected` are messages no retry can make acceptable (no
    Message-ID, too large), flagged for a person; `failed` are left unseen for the next poll;
    `waiting` are beyond this poll's batch.
    """

    mailbox: str
    unseen: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    rejected: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    waiting: int = 0

    def summary(self) -> dict[str, object]:
        return {
            "mailbox": self.mailbox,
            "unseen": self.unseen,
            **dict(self.outcomes),
            "rejected": len(self.rejected),
            "failed": len(self.failed),
            "waiting": self.waiting,
        }


class MailboxPoller(Protocol):
    def poll(self) -> MailboxPollReport:
        """Take the mailbox's new messages through the inbound e-mail path, once."""
        ...


_gateway: OutboundGateway | None = None
_mail_gateway: MailGateway | None = None
_mailbox_poller: MailboxPoller | None = None


def install_gateway(gateway: OutboundGateway) -> None:
    global _gateway
    _gateway = gateway


def get_gateway() -> OutboundGateway:
    if _gateway is None:
        raise RuntimeError("no outbound gateway installed: call relance.wiring.wire() at start-up")
    return _gateway


def install_mail_gateway(gateway: MailGateway) -> None:
    global _mail_gateway
    _mail_gateway = gateway


def get_mail_gateway() -> MailGateway:
    if _mail_gateway is None:
        raise RuntimeError("no mail gateway installed: call relance.wiring.wire() at start-up")
    return _mail_gateway


def install_mailbox_poller(poller: MailboxPoller) -> None:
    global _mailbox_poller
    _mailbox_poller = poller


def get_mailbox_poller() -> MailboxPoller:
    if _mailbox_poller is None:
        raise RuntimeError("no mailbox poller installed: call relance.wiring.wire() at start-up")
    return _mailbox_poller
