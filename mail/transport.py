"""SMTP delivery: one reused connection, a per-domain rate cap, errors sorted for the retry rules.

Opening an SMTP session (TCP, EHLO, STARTTLS, AUTH) costs more than sending a reminder, so the
transport keeps its connection between messages and reconnects once when the server dropped it
(idle timeout). Each recipient domain gets at most `smtp_domain_rate_per_second` messages a
second: Gmail, Outlook and Orange defer or block senders that burst. `MAIL FROM`/`RCPT TO`/`DATA`
are sent one by one (not `sendmail`) to keep the server's answer to DATA — usually with its queue
id — as the proof of hand-over.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass

from mail.addresses import domain_of
from relance.conversations.ports import DeliveryError
from relance.settings import Settings


@dataclass(frozen=True)
class Receipt:
    """The server's acceptance: code and text of its DATA answer (e.g. "2.0.0 Ok: queued as X")."""

    code: int
    response: str


class DomainRateLimiter:
    """At most `rate` sends a second to each recipient domain (a minimum spacing, per domain)."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, domain: str) -> float:
        if not self._interval:
            return 0.0
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next.get(domain, now))
            self._next[domain] = start + self._interval
        delay = start - now
        if delay > 0:
            time.sleep(delay)
        return delay


class SmtpTransport:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._connection: smtplib.SMTP | None = None
        self._lock = threading.Lock()
        self.limiter = DomainRateLimiter(settings.smtp_domain_rate_per_second)
        self.connections_opened = 0

    def send(self, sender: str, recipient: str, data: bytes) -> Receipt:
        self.limiter.wait(domain_of(recipient))
        with self._lock:
            try:
                return self._send_once(sender, recipient, data)
            except smtplib.SMTPServerDisconnected:
                self._drop()  # idle timeout on the server's side: one fresh connection
                try:
                    return self._send_once(sender, recipient, data)
                except smtplib.SMTPServerDisconnected as exc:
                    self._drop()
                    raise DeliveryError(
                        f"SMTP server disconnected: {exc}", retryable=True, code="smtp_disconnected"
                    ) from exc
            except (OSError, smtplib.SMTPException) as exc:
                self._drop()
                raise _delivery_error(exc) from exc

    def _send_once(self, sender: str, recipient: str, data: bytes) -> Receipt:
        connection = self._connect()
        connection.ehlo_or_helo_if_needed()
        code, answer = connection.mail(sender)
        if code != 250:
            connection.rset()
            raise smtplib.SMTPSenderRefused(code, answer, sender)
        code, answer = connection.rcpt(recipient)
        if code not in (250, 251):
            connection.rset()
            raise smtplib.SMTPRecipientsRefused({recipient: (code, answer)})
        code, answer = connection.data(data)
        if code != 250:
            raise smtplib.SMTPDataError(code, answer)
        return Receipt(code=code, response=answer.decode(errors="replace"))

    def _connect(self) -> smtplib.SMTP:
        if self._connection is not None:
            return self._connection
        settings = self._settings
        connection: smtplib.SMTP
        if settings.smtp_security == "tls":
            connection = smtplib.SMTP_SSL(
                settings.smtp_host,
                settings.smtp_port,
                timeout=settings.smtp_timeout_seconds,
                context=ssl.create_default_context(),
            )
        else:
            connection = smtplib.SMTP(
                settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds
            )
            if settings.smtp_security == "starttls":
                connection.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            connection.login(settings.smtp_username, settings.smtp_password)
        self._connection = connection
        self.connections_opened += 1
        return connection

    def _drop(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.close()
        finally:
            self._connection = None

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                with contextlib.suppress(OSError, smtplib.SMTPException):
                    self._connection.quit()
            self._drop()


def _delivery_error(exc: BaseException) -> DeliveryError:
    """4xx and network failures are retried; 5xx (no such mailbox, refused) are not."""
    code: int | None = None
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code = next(iter(exc.recipients.values()))[0]
    elif isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
    if code is None:
        return DeliveryError(f"SMTP connection failed: {exc}", retryable=True, code="smtp_network")
    return DeliveryError(f"SMTP {code}: {exc}", retryable=400 <= code < 500, code=f"smtp_{code}")
