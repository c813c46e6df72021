"""A missing or empty value never yields a sentence with a hole ("appelez le .", "chez .").

Issue 16 item 4: the unknown-number reply was rendered without the creditor's phone and the
out-of-scope reply (served by Rasa straight from a rule) without the creditor's name, and the
renderer printed the missing values as nothing.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import AuditEvent
from relance.nlg.renderer import TemplateFailed, render
from relance.nlg.templates_store import bundled_templates
from relance.settings import Settings


def _nlg(client: TestClient, settings: Settings, response: str, **body: object):  # type: ignore[no-untyped-def]
    return client.post(
        f"/nlg?token={settings.nlg_token}",
        json={
            "response": response,
            "arguments": {},
            "tracker": {"slots": {"language": "fr"}},
            **body,
        },
    )


def test_out_of_scope_served_by_rasa_names_the_creditor(
    client: TestClient, settings: Settings
) -> None:
    """Rasa sends only the tracker's slots for a response named in a rule."""
    response = _nlg(client, settings, "utter_out_of_scope")
    assert response.status_code == 200, response.text
    text = response.json()["text"]
    assert f"votre dossier chez {settings.creditor_name}. Pouvez-vous reformuler ?" in text
    assert "chez ." not in text


def test_unknown_number_reply_has_the_creditor_phone_with_what_its_caller_passes(
    settings: Settings,
) -> None:
    """relance/conversations/service.py passes only the creditor's name."""
    for language, ending in (("fr", "appelez le "), ("en", "please call ")):
        text = render(
            bundled_templates(),
            "utter_unknown_number",
            language=language,
            channel="sms",
            variables={"creditor_name": settings.creditor_name},
        )
        assert text.endswith(f"{ending}{settings.creditor_phone}."), text


def test_nlg_endpoint_answers_422_and_audits_instead_of_a_holed_sentence(
    client: TestClient, settings: Settings, db: Session
) -> None:
    """utter_balance without the balance its action passes: no text rather than 'est de .'"""
    response = _nlg(client, settings, "utter_balance")
    assert response.status_code == 422
    assert "balance_minor is missing" in response.json()["detail"]
    [event] = db.scalars(select(AuditEvent).where(AuditEvent.action == "wording.render_failed"))
    assert event.details["response"] == "utter_balance"


@pytest.mark.parametrize(
    ("source", "variables"),
    [
        ("Appelez le {{ creditor_phone }}.", {"creditor_phone": ""}),
        ("Appelez le {{ creditor_phone }}.", {"creditor_phone": "   "}),
        ("Payez ici : {{ pay_url }}", {"pay_url": None}),
        ("Payez ici : {{ pay_url }}", {}),
        ("Dû : {{ amount_minor | money(currency) }}", {"currency": "EUR"}),
        ("Dû : {{ amount_minor | money(currency) }}", {"amount_minor": 100}),
        ("Le {{ due_date | date }}", {"due_date": "not a date"}),
        ("Factures : {% for i in invoices %}{{ i.number }}{% endfor %}.", {}),
        ("Factures :{% for i in invoices %} {{ i.number }}{% endfor %} .", {"invoices": []}),
        ("Facture {{ invoice.number }}", {"invoice": {}}),
        ("Factures {{ refs | join(', ') }}", {}),
        ("({{ note }})", {"note": " "}),
    ],
)
def test_missing_empty_or_unformattable_values_are_errors(
    source: str, variables: dict[str, object]
) -> None:
    templates = {"utter_x": [{"fr": source, "en": source}]}
    with pytest.raises(TemplateFailed):
        render(templates, "utter_x", language="fr", variables=variables)


def test_optional_parts_guarded_by_if_still_render() -> None:
    templates = {
        "utter_x": [
            {"fr": "Bonjour.{% if pay_url %} Payez : {{ pay_url }}{% endif %}", "en": "Hello."}
        ]
    }
    assert render(templates, "utter_x", language="fr", variables={"pay_url": None}) == "Bonjour."
    assert render(templates, "utter_x", language="fr") == "Bonjour."


@pytest.mark.parametrize("field", ["creditor_name", "creditor_phone"])
@pytest.mark.parametrize("value", ["", "  "])
def test_settings_refuse_a_blank_creditor_name_or_phone(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings(**{field: value})


def test_nlg_refusals_are_problem_documents(client: TestClient, settings: Settings) -> None:
    """A bad token and an unknown response are the project's errors, mapped once by the api."""
    unknown = _nlg(client, settings, "utter_never_written")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json()["code"] == "template_not_found"
    assert "utter_never_written" in unknown.json()["detail"]
    bad = client.post("/nlg?token=wrong", json={"response": "utter_greet", "arguments": {}})
    assert bad.status_code == 401
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["code"] == "bad_nlg_token"
