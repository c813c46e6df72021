"""Raw RFC 5322 messages as an MTA would post them, signed like the inbound hook signs them."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP

from fastapi.testclient import TestClient
from httpx import Response

from mail.signature import sign
from tests.mail.conftest import DEBTOR_EMAIL, INBOUND_SECRET


def raw_mail(
    body: str,
    *,
    message_id: str,
    sender: str = DEBTOR_EMAIL,
    subject: str = "Re: Rappel : facture F-2026-0042",
    in_reply_to: str | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = f"Camille Martin <{sender}>"
    message["To"] = "relances@creancier.example"
    message["Subject"] = subject
    message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message.as_bytes()


def post_mail(client: TestClient, raw: bytes, secret: str | None = INBOUND_SECRET) -> Response:
    headers = {"Content-Type": "message/rfc822"}
    if secret is not None:
        headers["X-Relance-Signature"] = sign(secret, raw)
    return client.post("/mail/inbound", content=raw, headers=headers)


def dsn(failed_recipient: str, *, message_id: str, status: str = "5.1.1") -> bytes:
    """A delivery status notification (RFC 3464) as Postfix sends it."""
    return (
        "From: MAILER-DAEMON@mx.client.example\r\n"
        "To: relances@creancier.example\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {message_id}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n"
        "--B\r\n"
        "Content-Type: text/plain\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        "--B\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.client.example\r\n\r\n"
        f"Final-Recipient: rfc822; {failed_recipient}\r\n"
        "Action: failed\r\n"
        f"Status: {status}\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
        "--B--\r\n"
    ).encode()
