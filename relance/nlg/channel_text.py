"""Render a named response for the channel edges, with the creditor's identity always available."""

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
