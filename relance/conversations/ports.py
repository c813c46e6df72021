"""What the core needs from the channel edges, as protocols.

`relance` must not import messaging/ or voice/ (arrows point inward), yet the dunning dispatcher,
the ledger (thank-you message) and the console (collector reply) must send things. They ask for
the gateway here; the process assembly (`relance.wiring`) installs the Twilio implementation.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session

from relance.db.models import Contact, Conversation, Message


class DeliveryError(Exception):
    """Sending failed. `retryable` errors (429, 5xx, timeouts) are retried with backoff;
    hard ones (invalid number, opted out at the carrier) move on to the next channel."""

    def __init__(self, message: str, *, retryable: bool, code: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code


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


_gateway: OutboundGateway | None = None


def install_gateway(gateway: OutboundGateway) -> None:
    global _gateway
    _gateway = gateway


def get_gateway() -> OutboundGateway:
    if _gateway is None:
        raise RuntimeError("no outbound gateway installed: call relance.wiring.wire() at start-up")
    return _gateway
