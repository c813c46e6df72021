"""What an inbound e-mail is: a person's reply, an automatic answer, or a bounce.

Automatic answers (out-of-office, vacation, ticket acknowledgements) and bounces must never reach
the assistant nor get an answer: two robots answering each other is a mail loop. The signals,
in the order mail software sets them: `Auto-Submitted` other than `no` (RFC 3834), `X-Autoreply`
/ `X-Autorespond`, `Precedence: bulk|junk|list|auto_reply`, Microsoft's
`X-Auto-Response-Suppress` on its out-of-office answers, and as a last resort the subject lines
Outlook, Gmail and French clients use. A bounce is a delivery status notification
(`multipart/report; report-type=delivery-status`, RFC 3464) or a message from the mailer daemon.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from enum import StrEnum


class Kind(StrEnum):
    REPLY = "reply"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"


@dataclass(frozen=True)
class Bounce:
    recipients: tuple[str, ...]  # Final-Recipient of each failed delivery
    status: str | None  # e.g. 5.1.1
    permanent: bool


_AUTO_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response)|out of (the )?office|absence|"
    r"r[ée]ponse automatique|message d'absence|absent|vacation|away from)",
    re.IGNORECASE,
)
_DAEMON = re.compile(r"^(mailer-daemon|postmaster)@", re.IGNORECASE)


def classify(message: EmailMessage, sender: str | None) -> Kind:
    if _is_bounce(message, sender):
        return Kind.BOUNCE
    auto_submitted = (message.get("Auto-Submitted") or "").strip().lower()
    if auto_submitted and auto_submitted != "no":
        return Kind.AUTO_REPLY
    if message.get("X-Autoreply") or message.get("X-Autorespond"):
        return Kind.AUTO_REPLY
    precedence = (message.get("Precedence") or "").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return Kind.AUTO_REPLY
    suppress = (message.get("X-Auto-Response-Suppress") or "").lower()
    if "oof" in suppress or "all" in suppress:
        return Kind.AUTO_REPLY
    if _AUTO_SUBJECT.match(str(message.get("Subject") or "")):
        return Kind.AUTO_REPLY
    return Kind.REPLY


def _is_bounce(message: EmailMessage, sender: str | None) -> bool:
    if message.get_content_type() == "multipart/report":
        return message.get_param("report-type", header="content-type") == "delivery-status"
    return bool(sender and _DAEMON.match(sender))


def bounce_details(message: EmailMessage) -> Bounce:
    """The failed recipients of a DSN and whether the failure is permanent (status 5.x.x)."""
    recipients: list[str] = []
    status: str | None = None
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else []
        for block in blocks:
            if isinstance(block, str):
                continue
            action = str(block.get("Action") or "").strip().lower()
            final = str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
            if final and action in ("failed", ""):
                recipients.append(final.split(";", 1)[-1].strip().strip("<>").lower())
                status = str(block.get("Status") or status or "").strip() or status
    permanent = status is None or status.startswith("5")
    return Bounce(recipients=tuple(recipients), status=status, permanent=permanent)
