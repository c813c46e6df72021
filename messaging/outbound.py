"""The gateway the channel edges use: the installed one, else a Twilio gateway from settings.

The core gets its gateway from `relance.conversations.ports` (installed at start-up). The
webhooks need one too (links by SMS during a call); falling back to a fresh TwilioGateway keeps
them working in a process that was not wired, without installing anything behind its back.
"""

from __future__ import annotations

from relance.conversations.ports import OutboundGateway, get_gateway


def current_gateway() -> OutboundGateway:
    try:
        return get_gateway()
    except RuntimeError:
        from messaging.gateway import gateway_from_settings

        return gateway_from_settings()
