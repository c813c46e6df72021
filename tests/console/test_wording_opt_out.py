"""Issue 25 item 4: Reg F §1006.6(e), every electronic communication to a US consumer states how
to opt out. An admin cannot save an outbound text template (reminder, follow-up, link) without
the STOP notice; voice variants and replies inside a conversation are not concerned."""

from __future__ import annotations

import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import VersionedDocument
from relance.nlg.templates_store import active_templates
from tests.console.conftest import csrf_of

REMINDER = "utter_reminder_friendly"


def _save(client: TestClient, name: str, variants: list[dict[str, str]]):  # type: ignore[no-untyped-def]
    token = csrf_of(client, f"/console/admin/wording/edit/{name}")
    return client.post(
        f"/console/admin/wording/edit/{name}",
        data={
            "csrf_token": token,
            "action": "save",
            "document": yaml.safe_dump({name: variants}, allow_unicode=True),
        },
        follow_redirects=False,
    )


def test_a_reminder_without_the_opt_out_notice_cannot_be_saved(
    as_admin: TestClient, db: Session
) -> None:
    without = {
        "fr": "Rappel de {{ creditor_name }} : facture {{ invoice_refs | join(', ') }}.",
        "en": "Reminder from {{ creditor_name }}: invoice {{ invoice_refs | join(', ') }}.",
    }
    refused = _save(as_admin, REMINDER, [without])
    assert refused.status_code == 422
    assert "must tell how to opt out" in refused.text and "1006.6(e)" in refused.text
    assert db.scalars(select(VersionedDocument)).all() == []

    english_only = {**without, "en": without["en"] + " Reply STOP to opt out."}
    assert _save(as_admin, REMINDER, [english_only]).status_code == 422  # every language

    with_notice = {
        "fr": without["fr"] + " Répondez STOP pour vous désinscrire.",
        "en": without["en"] + " Reply STOP to opt out.",
    }
    spoken = {
        "channel": "voice",
        "fr": "Bonjour, ici {{ creditor_name }}.",
        "en": "Hello, this is {{ creditor_name }}.",
    }
    assert _save(as_admin, REMINDER, [with_notice, spoken]).status_code == 303
    assert active_templates(db)[REMINDER][0]["en"].endswith("Reply STOP to opt out.")


def test_replies_inside_a_conversation_do_not_need_it(as_admin: TestClient) -> None:
    saved = _save(as_admin, "utter_goodbye", [{"fr": "Au revoir.", "en": "Goodbye."}])
    assert saved.status_code == 303
