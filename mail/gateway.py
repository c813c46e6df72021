"""The SMTP implementation of the core's MailGateway port: claim, compose, send, keep the proof.

Idempotency: the Message-ID is derived from the send's idempotency key, and the outbound Message
row carrying it (unique `provider_id`) is claimed and committed *before* the SMTP session starts,
together with what composing wrote (the payment link the e-mail carries), and that commit ends
the transaction, so the SQLite write lock is not held through the SMTP exchange.
A retried job, or a second worker, finds the row: already sent → it gets that message back and
nothing goes out; still `queued` (another sender is on it, or a worker died mid-send) → refused
as an unknown outcome, never sent blindly a second time; failed with a retryable error → the
failed row is re-claimed by a conditional UPDATE, so only one retry sends.

Proof: the row keeps the Message-ID, the SMTP server's answer to DATA (its queue id), the SHA-256
and size of the exact bytes sent, the time, the subject and the attachments' names; the bytes
themselves are kept as an `.eml` file (owner-only) for the evidence pack.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mail import documents, unsubscribe
from mail.compose import Attachment, Envelope, message_bytes, message_id_for, render_parts
from mail.transport import SmtpTransport
from relance import audit
from relance.compliance.windows import zone
from relance.contacts import service as contacts
from relance.conversations.ports import DeliveryError, OutboundMail, PreparedMail
from relance.conversations.turn_lock import sending
from relance.db.base import utcnow
from relance.db.models import Contact, Conversation, Debtor, Invoice, Letter, Message
from relance.db.models.enums import Author, Channel, Direction, MessageStatus, Segment
from relance.dunning.reminder_content import reminder_invoices
from relance.letters.amounts import indemnity_applies
from relance.nlg.templates_store import Templates, active_templates
from relance.portal.access import message_link
from relance.private_files import private_dir, sent_mail_dir, write_private
from relance.settings import Settings, get_settings

log = logging.getLogger(__name__)
MAX_REFERENCES = 20
SENT_STATES = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ)


class SmtpMailGateway:
    def __init__(
        self, settings: Settings | None = None, transport: SmtpTransport | None = None
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._proofs = _ProofWriter()

    @property
    def settings(self) -> Settings:
        return self._settings or get_settings()

    @property
    def transport(self) -> SmtpTransport:
        if self._transport is None:  # built on first use: no connection at start-up
            self._transport = SmtpTransport(self.settings)
        return self._transport

    def send_mail(
        self, session: Session, *, conversation: Conversation, contact: Contact, mail: OutboundMail
    ) -> Message:
        """Send `mail` once. `mail.reply_rows`: reply rows the conversation path already wrote
        (the assistant's answers to an inbound e-mail): the first carries the e-mail, none is
        added. A failure leaves the row `failed` and names it in the DeliveryError (a retry
        claims it again: same Message-ID)."""
        stored = [m for m in (session.get(Message, i) for i in mail.reply_rows) if m is not None]
        message_id = message_id_for(mail.idempotency_key, self.settings)
        row = self._claim(session, conversation, contact, mail, message_id, stored)
        if row.status in SENT_STATES:
            return row
        # This process is the row's live sender from before its `queued` claim is committed
        # until the outcome is written (flushed: a sweep's conditional UPDATE then waits for
        # our commit): the reply retry's sweep of rows left queued by a dead process
        # (`reply_retry.recover_unsent`) never takes one that is still being sent.
        with sending(session, row.id):
            return self._send(session, conversation, contact, mail, message_id, row, stored)

    def _send(
        self,
        session: Session,
        conversation: Conversation,
        contact: Contact,
        mail: OutboundMail,
        message_id: str,
        row: Message,
        stored: list[Message],
    ) -> Message:
        settings = self.settings
        try:
            data, extra = self._compose(session, conversation, contact, mail, message_id)
        except Exception:
            row.status = MessageStatus.FAILED
            row.error_code = "compose_failed"
            raise
        # Before any byte leaves, everything the e-mail stands on is durable: the claim (a retry
        # cannot resend) and what composing wrote (the payment link the e-mail carries: a crash
        # after the SMTP answer must not leave a debtor a link to a row that was rolled back).
        # The commit also ends the transaction, so the SQLite write lock (BEGIN IMMEDIATE) is
        # not held through the SMTP exchange while webhooks wait to write. Nothing is read
        # from the database after it until the server answers (a read would begin a new
        # transaction: the recipient is taken first, whatever the session's expire_on_commit).
        recipient = contact.address
        session.commit()
        try:
            receipt = self.transport.send(settings.mail_from, recipient, data)
        except DeliveryError as exc:
            row.status = MessageStatus.FAILED
            row.error_code = exc.code
            row.extra = {**extra, "retryable": exc.retryable, "error": str(exc)[:300]}
            exc.message_id = row.id
            if not exc.retryable:
                contacts.record_failure(session, contact, error_code=exc.code, reference=message_id)
            session.flush()
            raise
        sent_at = utcnow()
        digest = hashlib.sha256(data).hexdigest()
        eml = write_private(_eml_path(settings, data), data)
        row.status = MessageStatus.SENT
        row.extra = {
            **extra,
            "smtp_code": receipt.code,
            "smtp_response": receipt.response[:300],
            "sha256": digest,
            "size": len(data),
            "sent_at": sent_at.isoformat(),
            "eml": eml.name,
        }
        for other in (stored or [])[1:]:
            other.status = MessageStatus.SENT
            other.extra = {**(other.extra or {}), "mail_message_id": message_id}
        conversation.last_message_at = sent_at
        audit.record(
            session,
            actor="system" if mail.author != Author.COLLECTOR else "collector",
            action="mail.sent",
            entity=row,
            debtor_id=conversation.debtor_id,
            message_id=message_id,
            sha256=digest,
            smtp_response=receipt.response[:120],
        )
        session.flush()
        return row

    def answer_unknown_sender(self, session: Session, *, recipient: str, data: bytes) -> str:
        """The identity-check answer to an address not on file (`mail.inbound`), first sent or
        retried (`reply_retry`): the same bytes each time, so the same Message-ID. It has no
        conversation or Message row; the audit trail keeps its proof. What the caller wrote
        (the inbound claim, its audit, the collectors' task) is committed first: a crash after
        the SMTP answer cannot bring the message back to be answered twice, and the SMTP
        exchange holds no transaction (on SQLite, the write lock)."""
        session.commit()
        receipt = self.transport.send(self.settings.mail_from, recipient, data)
        headers = BytesParser(policy=default_policy).parsebytes(data, headersonly=True)
        audit.record(
            session,
            actor="system",
            action="mail.unknown_sender_answered",
            address=recipient,
            message_id=str(headers.get("Message-ID") or ""),
            sha256=hashlib.sha256(data).hexdigest(),
            smtp_response=receipt.response[:120],
        )
        return receipt.response

    # -- steps ------------------------------------------------------------------------------
    def _claim(
        self,
        session: Session,
        conversation: Conversation,
        contact: Contact,
        mail: OutboundMail,
        message_id: str,
        stored: list[Message] | None,
    ) -> Message:
        existing = _by_message_id(session, message_id)
        if existing is None:
            row = stored[0] if stored else None
            try:
                with session.begin_nested():
                    if row is None:
                        row = _new_row(conversation, contact, mail)
                        session.add(row)
                    row.provider_id = message_id
                    row.status = MessageStatus.QUEUED
                    row.address = contact.address
                    row.extra = _claimed(row.extra, mail)
                    session.flush()
                return row
            except IntegrityError:
                existing = _by_message_id(session, message_id)
                assert existing is not None
        return _claim_existing(session, existing, mail, message_id)

    # -- batches (the dunning dispatcher's e-mails) -----------------------------------------
    def prepare_mails(
        self, session: Session, items: list[tuple[Conversation, Contact, OutboundMail]]
    ) -> list[PreparedMail | Exception]:
        """Claim and compose a batch: one query for the Message-IDs already used, one for the
        threads, the wording read once, the new rows inserted together (flushed; the caller
        commits them before any SMTP exchange, as `send_mail` does for one)."""
        settings = self.settings
        ids = [message_id_for(mail.idempotency_key, settings) for _, _, mail in items]
        existing = {
            row.provider_id: row
            for row in session.scalars(select(Message).where(Message.provider_id.in_(ids)))
        }
        threads = _thread_rows(session, [conversation.id for conversation, _, _ in items])
        templates = active_templates(session)
        memo: dict[str, str] = {}
        results: list[PreparedMail | Exception] = []
        rows: list[Message | dict[str, Any] | None] = []
        for (conversation, contact, mail), message_id in zip(items, ids, strict=True):
            row: Message | None = None
            try:
                if message_id in existing:
                    row = _claim_existing(session, existing[message_id], mail, message_id)
                    if row.status in SENT_STATES:
                        done = _prepared(conversation, contact, mail, message_id, b"", {})
                        done.row_id, done.already_sent = row.id, True
                        results.append(done)
                        rows.append(None)
                        continue
                thread = _thread_of(threads.get(conversation.id, []), message_id)
                data, extra = self._compose_one(
                    session, conversation, contact, mail, message_id, thread, templates, memo
                )
            except Exception as exc:  # each e-mail's failure is its own
                if row is not None and not isinstance(exc, DeliveryError):
                    row.status, row.error_code = MessageStatus.FAILED, "compose_failed"
                results.append(exc)
                rows.append(None)
                continue
            prepared = _prepared(conversation, contact, mail, message_id, data, extra)
            if row is None:
                rows.append(_new_values(conversation, contact, mail, message_id))
            else:
                row.status = MessageStatus.QUEUED
                row.extra = _claimed(row.extra, mail)
                prepared.row_id = row.id
                rows.append(row)
            results.append(prepared)
        new = [r for r in rows if isinstance(r, dict)]
        if new:
            # One multi-row INSERT (no RETURNING: SQLite would send one statement per row to
            # tell the ids apart), then the ids by their unique Message-ID.
            session.execute(insert(Message), new)
            ids_of = {
                provider_id: row_id
                for provider_id, row_id in session.execute(
                    select(Message.provider_id, Message.id).where(
                        Message.provider_id.in_([r["provider_id"] for r in new])
                    )
                )
            }
            for result in results:
                if isinstance(result, PreparedMail) and not result.row_id:
                    result.row_id = ids_of.get(result.message_id, 0)
        session.flush()
        return results

    def _compose_one(
        self,
        session: Session,
        conversation: Conversation,
        contact: Contact,
        mail: OutboundMail,
        message_id: str,
        thread: _Thread,
        templates: Templates,
        memo: dict[str, str],
    ) -> tuple[bytes, dict[str, object]]:
        """A discreet e-mail composes from memory; one with details writes its links, undone
        by a savepoint if composing then fails, so the batch's other e-mails go on."""
        with nullcontext() if mail.discreet else session.begin_nested():
            return self._compose(
                session,
                conversation,
                contact,
                mail,
                message_id,
                thread=thread,
                templates=templates,
                memo=memo,
            )

    def deliver(self, mail: PreparedMail) -> None:
        """One SMTP exchange over the transport's reused connection (its per-domain cap and
        reconnection apply); the outcome is kept on `mail` for `record_mails`."""
        try:
            receipt = self.transport.send(self.settings.mail_from, mail.recipient, mail.data)
        except DeliveryError as exc:
            exc.message_id = mail.row_id
            mail.error = exc
            raise
        mail.sent_at = utcnow()
        mail.smtp_code, mail.smtp_response = receipt.code, receipt.response
        # The bytes are kept at once, by a writer thread while the next e-mail goes out (the
        # file's creation cost a sixth of an SMTP exchange); `record_mails` waits for them.
        self._proofs.write(mail.row_id, _eml_path(self.settings, mail.data), mail.data)

    def record_mails(self, session: Session, mails: list[PreparedMail]) -> None:
        """The batch's outcomes in a few statements: the rows (sent with their proof, or failed
        with the error), the conversations' last message time, one `mail.sent` audit each."""
        # Every `.eml` of these mails written before its name is recorded as the proof (the
        # next batch's may still be on their way: the dispatcher sends while it records).
        self._proofs.wait([m.row_id for m in mails])
        rows: list[dict[str, Any]] = []
        conversations: dict[int, Any] = {}
        events: list[dict[str, Any]] = []
        for mail in mails:
            if mail.already_sent:
                continue
            if mail.error is not None:
                exc = mail.error
                rows.append(
                    {
                        "id": mail.row_id,
                        "status": MessageStatus.FAILED,
                        "error_code": exc.code,
                        "extra": {
                            **mail.extra,
                            "retryable": exc.retryable,
                            "error": str(exc)[:300],
                        },
                    }
                )
                if not exc.retryable:
                    contact = session.get(Contact, mail.contact_id)
                    assert contact is not None
                    contacts.record_failure(
                        session, contact, error_code=exc.code, reference=mail.message_id
                    )
                continue
            if mail.sent_at is None:
                continue  # not sent (the caller stopped before it): left as claimed
            digest = hashlib.sha256(mail.data).hexdigest()
            rows.append(
                {
                    "id": mail.row_id,
                    "status": MessageStatus.SENT,
                    "error_code": None,
                    "extra": {
                        **mail.extra,
                        "smtp_code": mail.smtp_code,
                        "smtp_response": (mail.smtp_response or "")[:300],
                        "sha256": digest,
                        "size": len(mail.data),
                        "sent_at": mail.sent_at.isoformat(),
                        "eml": f"{digest}.eml",
                    },
                }
            )
            conversations[mail.conversation_id] = mail.sent_at
            events.append(
                audit.event_values(
                    actor="system" if mail.author != Author.COLLECTOR else "collector",
                    action="mail.sent",
                    entity_type=Message.__tablename__,
                    entity_id=mail.row_id,
                    debtor_id=mail.debtor_id,
                    message_id=mail.message_id,
                    sha256=digest,
                    smtp_response=(mail.smtp_response or "")[:120],
                )
            )
        if rows:
            session.execute(update(Message), rows)
        if conversations:
            session.execute(
                update(Conversation),
                [{"id": i, "last_message_at": at} for i, at in conversations.items()],
            )
        audit.record_many(session, events)

    def _compose(
        self,
        session: Session,
        conversation: Conversation,
        contact: Contact,
        mail: OutboundMail,
        message_id: str,
        *,
        thread: _Thread | None = None,
        templates: Templates | None = None,
        memo: dict[str, str] | None = None,
    ) -> tuple[bytes, dict[str, object]]:
        """The e-mail's exact bytes and what its row keeps; a batch passes the `thread` and
        the wording (`templates`) it read for all its e-mails at once, and the `memo` of the
        wording it rendered (`compose.word`)."""
        settings = self.settings
        debtor = session.get(Debtor, conversation.debtor_id) if conversation.debtor_id else None
        language = conversation.language
        if thread is None:
            thread = _thread(session, conversation, message_id)
        invoices: list[Invoice] = []
        attachments: list[Attachment] = []
        letter_reference = None
        pay_url = None
        portal_url = None
        if not mail.discreet and debtor is not None:
            if mail.stage is not None:  # a reminder or the formal notice: the debtor's portal
                portal_url = message_link(session, debtor)
            if mail.invoice_ids:
                invoices = list(
                    session.scalars(
                        select(Invoice)
                        .where(Invoice.id.in_(mail.invoice_ids))
                        .order_by(Invoice.due_date, Invoice.id)
                    )
                )
                if mail.stage is not None:
                    # A reminder's group may hold an invoice still to fall due next to an
                    # overdue one: the body claims only the latter, and so do the subject, the
                    # copies and the pay button (their link's page shows the body's amount).
                    invoices = reminder_invoices(
                        invoices,
                        [i.number for i in invoices],
                        stage=mail.stage,
                        today=utcnow().astimezone(zone(debtor.timezone)).date(),
                    )
                for invoice in invoices:
                    name, data = documents.invoice_pdf(invoice, debtor, language)
                    attachments.append(Attachment(name, data))
                pay_url = _payment_url(session, debtor, [i.id for i in invoices])
            if mail.letter_id is not None:
                letter = session.get(Letter, mail.letter_id)
                pdf = documents.letter_pdf(letter) if letter is not None else None
                if pdf is not None:
                    letter_reference = pdf[0].removesuffix(".pdf")
                    attachments.append(Attachment(*pdf))
        subject = None
        if mail.stage is None:
            original = thread.subject or ""
            subject = original if original.lower().startswith("re:") else f"Re: {original}"
            subject = subject if original else None
        unsubscribe_url = unsubscribe.url_for(contact, settings)
        parts = render_parts(
            session,
            settings,
            paragraphs=mail.paragraphs,
            language=language,
            stage=mail.stage,
            subject=subject,
            invoice_refs=[i.number for i in invoices],
            segment=debtor.segment if debtor is not None else "consumer",
            # The EUR 40 indemnity is named for invoices in euros only: an e-mail about a bill
            # in dollars or pounds claims none (and one naming no invoice states none).
            indemnity=debtor is not None
            and debtor.segment == Segment.B2B
            and any(indemnity_applies(i.currency) for i in invoices),
            pay_url=pay_url,
            portal_url=portal_url,
            letter_reference=letter_reference,
            unsubscribe_url=unsubscribe_url,
            with_legal=mail.stage is not None and not mail.discreet,
            templates=templates,
            memo=memo,
        )
        if mail.stage is not None:
            auto_submitted: str | None = "auto-generated"
        elif mail.author == Author.BOT:
            auto_submitted = "auto-replied"
        else:
            auto_submitted = None
        envelope = Envelope(
            sender=settings.mail_from,
            recipient=contact.address,
            message_id=message_id,
            in_reply_to=thread.in_reply_to,
            references=thread.references,
            unsubscribe_url=unsubscribe_url,
            auto_submitted=auto_submitted,
            attachments=tuple(attachments),
        )
        data = message_bytes(parts, envelope, settings)
        extra: dict[str, object] = {
            "message_id": message_id,
            "subject": parts.subject,
            "in_reply_to": thread.in_reply_to,
            "attachments": [a.filename for a in attachments],
            "dkim": bool(settings.dkim_private_key_path),
        }
        return data, extra


class _ProofWriter:
    """Writes the `.eml` proofs on one thread of its own, in order, while the SMTP exchanges go
    on; `wait` returns once those of the given mails are on disk, or raises the first failure.
    Thread-safe: one batch's proofs are written while the previous batch's are waited for."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: dict[int, Future[Path]] = {}  # by outbound row id
        self._lock = threading.Lock()

    def write(self, row_id: int, path: Path, data: bytes) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="eml")
            self._pending[row_id] = self._pool.submit(write_private, path, data)

    def wait(self, row_ids: list[int]) -> None:
        with self._lock:
            futures = [f for f in (self._pending.pop(i, None) for i in row_ids) if f is not None]
        for future in futures:
            future.result()


class _Thread:
    def __init__(
        self, in_reply_to: str | None, references: tuple[str, ...], subject: str | None
    ) -> None:
        self.in_reply_to = in_reply_to
        self.references = references
        self.subject = subject


def _thread(session: Session, conversation: Conversation, own_id: str) -> _Thread:
    """The conversation's earlier e-mails: the latest is answered, all are referenced."""
    return _thread_of(_thread_rows(session, [conversation.id]).get(conversation.id, []), own_id)


def _thread_rows(session: Session, conversation_ids: list[int]) -> dict[int, list[Any]]:
    """The e-mails of these conversations that a new one would thread under, oldest first
    (one query for a whole batch)."""
    rows: dict[int, list[Any]] = {}
    for row in session.execute(
        select(Message.conversation_id, Message.provider_id, Message.direction, Message.extra)
        .where(
            Message.conversation_id.in_(conversation_ids),
            Message.channel == Channel.EMAIL,
            Message.provider_id.is_not(None),
            Message.status != MessageStatus.FAILED,
        )
        .order_by(Message.id)
    ):
        rows.setdefault(row.conversation_id, []).append(row)
    return rows


def _thread_of(all_rows: list[Any], own_id: str) -> _Thread:
    """The thread from a conversation's e-mails, leaving out the one being sent."""
    rows = [r for r in all_rows if r.provider_id != own_id]
    ids = [r.provider_id for r in rows if r.provider_id]
    inbound = [r for r in rows if r.direction == Direction.INBOUND]
    subject = None
    if inbound:
        subject = (inbound[-1].extra or {}).get("subject")
    return _Thread(
        in_reply_to=ids[-1] if ids else None,
        references=tuple(ids[-MAX_REFERENCES:]),
        subject=str(subject) if subject else None,
    )


def _claim_existing(
    session: Session, existing: Message, mail: OutboundMail, message_id: str
) -> Message:
    """A row already carries this Message-ID: sent → returned, nothing goes out again; failed
    with a retryable error → claimed again by a conditional UPDATE (one retry sends); anything
    else (queued: another sender, or a dead one) → refused as an unknown outcome."""
    if existing.status in SENT_STATES:
        log.info("e-mail %s already sent: not sending again", message_id)
        return existing
    retryable = existing.status == MessageStatus.FAILED and bool(
        (existing.extra or {}).get("retryable")
    )
    if retryable:
        taken = session.execute(
            update(Message)
            .where(Message.id == existing.id, Message.status == MessageStatus.FAILED)
            .values(status=MessageStatus.QUEUED)
            .returning(Message.id),
            execution_options={"synchronize_session": False},
        ).first()
        if taken is not None:
            session.refresh(existing)
            existing.extra = _claimed(existing.extra, mail)
            return existing
    raise DeliveryError(
        f"e-mail {message_id} was already attempted ({existing.status}): its outcome is "
        "unknown or final, it is not sent again",
        retryable=False,
        code="mail_already_attempted",
    )


def _new_row(conversation: Conversation, contact: Contact, mail: OutboundMail) -> Message:
    """The outbound row an e-mail is stored as (its Message-ID and status set by the claim)."""
    return Message(
        conversation_id=conversation.id,
        direction=Direction.OUTBOUND,
        channel=Channel.EMAIL,
        author=mail.author,
        body="\n\n".join(mail.paragraphs),
        address=contact.address,
        created_at=utcnow(),
    )


def _new_values(
    conversation: Conversation, contact: Contact, mail: OutboundMail, message_id: str
) -> dict[str, Any]:
    """The columns of a new outbound row, claimed (`queued`) under its Message-ID, for a
    multi-row INSERT: what `_new_row` and the claim of `_claim` give one e-mail."""
    return {
        "conversation_id": conversation.id,
        "direction": Direction.OUTBOUND,
        "channel": Channel.EMAIL,
        "author": mail.author,
        "body": "\n\n".join(mail.paragraphs),
        "address": contact.address,
        "created_at": utcnow(),
        "provider_id": message_id,
        "status": MessageStatus.QUEUED,
        "extra": _claimed(None, mail),
    }


def _prepared(
    conversation: Conversation,
    contact: Contact,
    mail: OutboundMail,
    message_id: str,
    data: bytes,
    extra: dict[str, object],
) -> PreparedMail:
    """What the SMTP exchange and the proof need, copied out of the ORM objects."""
    return PreparedMail(
        message_id=message_id,
        row_id=0,
        conversation_id=conversation.id,
        debtor_id=conversation.debtor_id,
        contact_id=contact.id,
        recipient=contact.address,
        data=data,
        extra=extra,
        author=mail.author,
    )


def _eml_path(settings: Settings, data: bytes) -> Path:
    """Where the exact bytes sent are kept: named by their SHA-256."""
    digest = hashlib.sha256(data).hexdigest()
    return private_dir(sent_mail_dir(settings.var_dir)) / f"{digest}.eml"


def _claimed(extra: dict[str, Any] | None, mail: OutboundMail) -> dict[str, Any]:
    """What a `queued` row says while it is being sent (the outcome replaces it): since when,
    and whether it is a reply in the thread (a reminder has a stage), for the sweep of rows a
    dead process left queued (`reply_retry.recover_unsent`)."""
    return {**(extra or {}), "claimed_at": utcnow().isoformat(), "reply": mail.stage is None}


def _by_message_id(session: Session, message_id: str) -> Message | None:
    return session.scalars(select(Message).where(Message.provider_id == message_id)).first()


def _payment_url(session: Session, debtor: Debtor, invoice_ids: list[int]) -> str | None:
    """A payment link from the payments edge when one is wired in (the e-mail works without)."""
    from relance.ledger.ports import get_payments

    try:
        port = get_payments()
    except RuntimeError:
        return None
    _link, url = port.create_link(
        session, debtor=debtor, purpose="balance", invoice_ids=invoice_ids
    )
    return url
