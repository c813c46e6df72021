"""Render a named response for the channels, with the creditor's identity always available.

The channels' own texts (STOP/HELP confirmations, voice prompts, the SMS sent during a call) are
wording templates like the assistant's. This lived in messaging/ while voice/ imported it too; it
is the core's (nlg) so every channel renders the same way without importing another channel.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from relance.nlg.renderer import render
from relance.nlg.templates_store import active_templates
from relance.settings import get_settings


def text(session: Session, name: str, *, language: str, channel: str, **variables: Any) -> str:
    settings = get_settings()
    context = {
        "creditor_name": settings.creditor_name,
        "creditor_phone": settings.creditor_phone,
        **variables,
    }
    return render(
        active_templates(session), name, language=language, channel=channel, variables=context
    )
