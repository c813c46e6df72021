"""Process assembly: plug the edge implementations into the core's ports.

With `relance.app`, this is the one place where `relance` imports the edge packages. Every process
that sends or charges (api, action server, worker) calls `wire()` once at start-up.
"""

from __future__ import annotations

from functools import cache


@cache
def wire() -> None:
    """Install the Twilio gateway, the SMTP mail gateway, the IMAP mailbox poller and the
    payments adapter (idempotent)."""
    from mail.gateway import SmtpMailGateway
    from mail.imap import ImapPoller
    from payment_links.wiring import PaymentLinksAdapter
    from relance.conversations.ports import (
        install_gateway,
        install_mail_gateway,
        install_mailbox_poller,
    )
    from relance.ledger.ports import install_payments
    from twilio_edge.gateway import TwilioGateway

    install_gateway(TwilioGateway())
    install_mail_gateway(SmtpMailGateway())
    install_mailbox_poller(ImapPoller())
    install_payments(PaymentLinksAdapter())
