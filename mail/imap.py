"""IMAP polling: the replies mailbox read by the worker, for creditors with no MTA pipe.

A creditor whose debtors' replies land in an ordinary mailbox (no MTA pipe, no provider's
inbound-parse webhook to call `POST /mail/inbound`) sets IMAP_HOST and the account; the worker
then polls IMAP_FOLDER every IMAP_POLL_SECONDS (`relance mail poll` polls once). Each unseen
message is fetched raw (`BODY.PEEK[]`: fetching does not mark it seen) and handed to
`mail.inbound.handle_raw`, the very function behind `POST /mail/inbound`, in its own
transaction; it is flagged `\\Seen` only after that transaction committed. So a reply is
classified, threaded, stripped, answered or ignored exactly as through the endpoint.

Why the `\\Seen` flag is the poller's state, and not a "highest UID processed" mark kept per
mailbox and UIDVALIDITY in our database:
- a message whose processing fails (the database down, a bug) simply stays unseen and is taken
  again at the next poll, alone, while the messages after it go through; with a high-water mark
  each failed UID below the mark would need a record of its own, or one bad message would hold
  back every reply behind it;
- the state lives with the messages: a restored database, a new UIDVALIDITY (the server
  renumbered the folder) or a second installation reading the same folder need no reset;
- replays are harmless anyway. `handle_raw` claims each message by its Message-ID
  (`webhook_events`, unique) before anything else, so a message processed and committed whose
  `\\Seen` flag was never stored (the process died in between, the connection dropped) comes
  back as `duplicate` at the next poll and is only flagged: never answered twice. Two pollers at
  once (the worker and `relance mail poll`) meet on the same claim.
The price: the folder must be the poller's own (a dedicated mailbox, or a folder a server rule
files the replies into). A person who opens a message there in a mail client marks it seen
before the poller takes it. The architecture page says so, and so does the settings' comment.

A message that can never be accepted (no Message-ID, no valid From, larger than
`MAX_MESSAGE_BYTES`: the endpoint answers these with a 4xx) is flagged `\\Seen \\Flagged`: kept in
the mailbox and starred for a person, logged, and not retried at every poll. A login refused,
a server out of reach or a folder that does not exist raises the project's error before any
message is touched.
"""

from __future__ import annotations

import imaplib
import logging
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from mail import inbound
from mail.gateway import SmtpMailGateway
from relance.conversations.ports import MailboxPollReport
from relance.db.session import session_scope
from relance.errors import BadInput, Conflict, NotFound, Unauthorized, Unavailable
from relance.settings import Settings, get_settings

log = logging.getLogger(__name__)
BATCH = 100  # messages per poll: a poll stays short; the rest wait for the next one
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
IMAP_ERRORS = (imaplib.IMAP4.error, OSError)  # ssl.SSLError and timeouts are OSErrors


class ImapPoller:
    """The `MailboxPoller` port over the standard library's imaplib (no dependency added)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        batch: int = BATCH,
    ) -> None:
        self._settings = settings
        self._ssl_context = ssl_context  # None: the system's trust store, hostname checked
        self.batch = batch

    @property
    def settings(self) -> Settings:
        return self._settings or get_settings()

    def poll(self) -> MailboxPollReport:
        settings = self.settings
        if not settings.imap_enabled:
            raise Conflict("imap_not_configured", "IMAP_HOST is not set: no mailbox to poll")
        report = MailboxPollReport(mailbox=_mailbox_name(settings))
        gateway = SmtpMailGateway(settings)
        try:
            with self._connection(settings) as imap:
                uids = _unseen(imap)
                report.unseen = len(uids)
                report.waiting = max(0, len(uids) - self.batch)
                for uid in uids[: self.batch]:
                    self._take(imap, uid, gateway, report)
        except imaplib.IMAP4.error as exc:
            raise Unavailable("imap_failed", f"{report.mailbox}: {_text(exc)}") from exc
        except OSError as exc:
            raise Unavailable("imap_unreachable", f"{report.mailbox}: {exc}") from exc
        finally:
            gateway.transport.close()
        log.info("IMAP poll %s", report.summary())
        return report

    def _take(
        self, imap: imaplib.IMAP4, uid: int, gateway: SmtpMailGateway, report: MailboxPollReport
    ) -> None:
        """One message: processed and committed, then flagged; on failure left unseen. An IMAP
        error (the mailbox, not the message) is not caught here: the poll stops (see `poll`)."""
        try:
            raw = _fetch(imap, uid)
        except BadInput as exc:
            _refuse(imap, uid, exc, report)
            return
        if raw is None:  # expunged since the search (someone moved or deleted it)
            return
        try:
            with session_scope() as session:
                outcome = inbound.handle_raw(session, raw, gateway)
        except BadInput as exc:
            _refuse(imap, uid, exc, report)
            return
        except Exception as exc:
            log.exception("%s UID %d failed: left unseen for the next poll", report.mailbox, uid)
            report.failed.append(f"UID {uid}: {type(exc).__name__}: {exc}"[:300])
            return
        _flag(imap, uid, r"(\Seen)")
        report.outcomes[outcome.status] += 1

    @contextmanager
    def _connection(self, settings: Settings) -> Iterator[imaplib.IMAP4]:
        """Connected (TLS as configured, never a plain-text fallback), logged in, folder selected
        read-write; logged out afterwards whatever happened."""
        imap = self._connect(settings)
        try:
            try:
                imap.login(_quote(settings.imap_username), settings.imap_password)
            except imaplib.IMAP4.abort:
                raise
            except imaplib.IMAP4.error as exc:
                raise Unauthorized(
                    "imap_login_refused",
                    f"{_mailbox_name(settings)}: the server refused the login of "
                    f"{settings.imap_username} ({_text(exc)}); check IMAP_USERNAME and "
                    "IMAP_PASSWORD",
                ) from exc
            status, data = imap.select(_quote(settings.imap_folder))
            if status != "OK":
                raise NotFound(
                    "imap_folder_missing",
                    f"{_mailbox_name(settings)}: cannot open the folder ({_text(data)})",
                )
            yield imap
        finally:
            with suppress(*IMAP_ERRORS):
                imap.logout()

    def _connect(self, settings: Settings) -> imaplib.IMAP4:
        host, port, timeout = settings.imap_host, settings.imap_port, settings.imap_timeout_seconds
        try:
            if settings.imap_security == "tls":
                return imaplib.IMAP4_SSL(host, port, ssl_context=self._context(), timeout=timeout)
            imap = imaplib.IMAP4(host, port, timeout=timeout)
        except IMAP_ERRORS as exc:
            raise Unavailable(
                "imap_unreachable", f"{_mailbox_name(settings)}: cannot connect ({exc})"
            ) from exc
        if settings.imap_security == "starttls":
            try:
                imap.starttls(ssl_context=self._context())
            except IMAP_ERRORS as exc:
                with suppress(*IMAP_ERRORS):
                    imap.shutdown()
                raise Unavailable(
                    "imap_starttls_failed",
                    f"{_mailbox_name(settings)}: STARTTLS failed ({_text(exc)}); the password "
                    "was not sent",
                ) from exc
        return imap

    def _context(self) -> ssl.SSLContext:
        return self._ssl_context or ssl.create_default_context()


def _unseen(imap: imaplib.IMAP4) -> list[int]:
    status, data = imap.uid("SEARCH", "UNSEEN")
    if status != "OK":
        raise imaplib.IMAP4.error(f"UID SEARCH UNSEEN: {_text(data)}")
    return sorted(int(uid) for uid in (data[0] or b"").split())


def _fetch(imap: imaplib.IMAP4, uid: int) -> bytes | None:
    """The raw message, or None when it is gone. One larger than the inbound path accepts is
    refused from its size, not downloaded."""
    status, data = imap.uid("FETCH", str(uid), "(RFC822.SIZE)")
    if status != "OK":
        raise imaplib.IMAP4.error(f"UID FETCH {uid} RFC822.SIZE: {_text(data)}")
    size = next((m for d in data if isinstance(d, bytes) and (m := _SIZE.search(d))), None)
    if size is None:
        return None
    inbound.check_size(int(size.group(1)))
    status, data = imap.uid("FETCH", str(uid), "(BODY.PEEK[])")
    if status != "OK":
        raise imaplib.IMAP4.error(f"UID FETCH {uid} BODY.PEEK[]: {_text(data)}")
    return next((part[1] for part in data if isinstance(part, tuple)), None)


def _refuse(imap: imaplib.IMAP4, uid: int, error: BadInput, report: MailboxPollReport) -> None:
    """Kept in the mailbox, starred for a person, not retried: no later poll can accept it."""
    log.warning(
        "%s UID %d refused (%s: %s): flagged for a person, not retried",
        report.mailbox,
        uid,
        error.code,
        error.message,
    )
    _flag(imap, uid, r"(\Seen \Flagged)")
    report.rejected.append(f"UID {uid}: {error.code}: {error.message}")


def _flag(imap: imaplib.IMAP4, uid: int, flags: str) -> None:
    status, data = imap.uid("STORE", str(uid), "+FLAGS.SILENT", flags)
    if status != "OK":
        raise imaplib.IMAP4.error(f"UID STORE {uid} {flags}: {_text(data)}")


def _quote(value: str) -> str:
    """An IMAP quoted string (imaplib sends other arguments as they are)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _mailbox_name(settings: Settings) -> str:
    return (
        f"imap {settings.imap_username}@{settings.imap_host}:{settings.imap_port}"
        f"/{settings.imap_folder}"
    )


def _text(value: object) -> str:
    """Server answers arrive as bytes, or lists of them, inside imaplib's errors."""
    if isinstance(value, imaplib.IMAP4.error) and value.args:
        value = value.args[0]
    if isinstance(value, list):
        value = b" ".join(v for v in value if isinstance(v, bytes))
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    return str(value)[:300]
