"""Tell the debtor something (thanks, reminder, failed charge) on the channel they use.

Wording comes from the NLG templates by response name; sending goes through the outbound gateway
port. A failed or impossible send never undoes the money movement that caused it: it is audited
and the caller carries on.
"""

from __future__ import annotations

import logging
from typing import Any

from jinja2 import TemplateError
from sqlalchemy.orm import Session

from relance import audit
from relance.conversations import ports
from relance.conversations.repository import conversation_for_debtor
from relance.db.models import Contact, Debtor, Message
from relance.db.models.enums import Author, Channel
from relance.nlg.renderer import UnknownResponse, render
from relance.nlg.templates_store import active_templates
from relance.settings import get_settings

log = logging.getLogger(__name__)
TEXT_CHANNELS = (Channel.SMS, Channel.WHATSAPP)


def pick_contact(debtor: Debtor, preferred_channel: str | None) -> Contact | None:
    """The reachable text contact on the channel last used, else the first reachable one."""
    reachable = [c for c in debtor.contacts if c.reachable and c.channel in TEXT_CHANNELS]
    for contact in reachable:
        if contact.channel == preferred_channel:
            return contact
    return reachable[0] if reachable else None


def notify_debtor(
    session: Session,
    debtor: Debtor,
    response: str,
    variables: dict[str, Any] | None = None,
    *,
    reason: str,
) -> Message | None:
    """Render `response` in the debtor's language and send it; None when nobody could be reached."""
    conversation = conversation_for_debtor(session, debtor)
    contact = pick_contact(debtor, conversation.last_channel)
    if contact is None:
        audit.record(
            session,
            actor="system",
            action="notify.skipped",
            entity=debtor,
            debtor_id=debtor.id,
            response=response,
            reason=reason,
            why="no reachable text contact",
        )
        return None
    context = {"creditor_name": get_settings().creditor_name, "debtor_name": debtor.name}
    context.update(variables or {})
    try:
        text = render(
            active_templates(session),
            response,
            language=conversation.language or debtor.language,
            channel=contact.channel,
            variables=context,
        )
        with session.begin_nested():
            message = ports.get_gateway().send_text(
                session,
                conversation=conversation,
                contact=contact,
                text=text,
                author=Author.SYSTEM,
            )
    except (ports.DeliveryError, RuntimeError, UnknownResponse, TemplateError) as exc:
        log.warning("could not send %s to debtor %s: %s", response, debtor.id, exc)
        audit.record(
            session,
            actor="system",
            action="notify.failed",
            entity=debtor,
            debtor_id=debtor.id,
            response=response,
            reason=reason,
            error=str(exc),
        )
        return None
    audit.record(
        session,
        actor="system",
        action="notify.sent",
        entity=message,
        debtor_id=debtor.id,
        response=response,
        reason=reason,
        channel=contact.channel,
    )
    return message
