"""The reminders and the e-mails' legal mentions name the EUR 40 recovery indemnity (D441-5) only
for a business's invoices in euros: to a business invoiced in dollars or pounds they said "the
EUR 40 recovery indemnity applies", a sum Relance does not claim on such a bill (no exchange rate
to rely on); the late-payment interest is still mentioned."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from relance.db.models import Debtor, Invoice
from relance.db.models.enums import Segment
from relance.dunning.reminder_content import reminder_variables
from relance.nlg.renderer import render
from relance.nlg.templates_store import bundled_templates

TODAY = date(2026, 11, 23)
IDENTITY = {"creditor_name": "Relance Demo SAS", "creditor_phone": "+33 1 84 00 00 00"}
INDEMNITY = {"en": "EUR 40", "fr": "40 €"}
INTEREST = {"en": "Late-payment interest", "fr": "pénalités de retard"}


def _variables(currency: str, segment: str = Segment.B2B) -> dict[str, object]:
    invoice = Invoice(
        id=1,
        number="INV-1",
        amount_minor=12_345,
        paid_minor=0,
        currency=currency,
        issue_date=TODAY - timedelta(days=60),
        due_date=TODAY - timedelta(days=30),
    )
    debtor = Debtor(id=7, name="Sam Jones", segment=segment)
    return reminder_variables(debtor, [invoice], ["INV-1"], today=TODAY, pay_url=None) | IDENTITY


def _render(name: str, language: str, variables: dict[str, object]) -> str:
    text = render(bundled_templates(), name, language=language, channel="sms", variables=variables)
    return " ".join(text.split())


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("currency", ["USD", "GBP"])
@pytest.mark.parametrize("name", ["utter_reminder_firm", "utter_reminder_formal_notice_announce"])
def test_a_reminder_on_a_bill_in_another_currency_names_no_indemnity(
    name: str, currency: str, language: str
) -> None:
    variables = _variables(currency)
    assert variables["indemnity"] is False
    text = _render(name, language, variables)
    assert "40" not in text and "indemnit" not in text.lower()
    assert INTEREST[language].lower() in text.lower()


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("name", ["utter_reminder_firm", "utter_reminder_formal_notice_announce"])
def test_a_reminder_on_a_bill_in_euros_still_names_the_40_euros(name: str, language: str) -> None:
    variables = _variables("EUR")
    assert variables["indemnity"] is True
    assert INDEMNITY[language] in _render(name, language, variables)


def test_a_consumer_is_never_told_of_the_indemnity() -> None:
    variables = _variables("EUR", segment=Segment.CONSUMER)
    assert variables["indemnity"] is False
    text = _render("utter_reminder_firm", "fr", variables)
    assert "40 €" not in text and "pénalités" not in text


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_legal_mentions_name_the_indemnity_only_when_it_applies(language: str) -> None:
    without = _render(
        "utter_mail_legal", language, {"segment": "b2b", "indemnity": False, **IDENTITY}
    )
    assert "L441-10" in without
    assert "40" not in without and "D441-5" not in without
    with_it = _render(
        "utter_mail_legal", language, {"segment": "b2b", "indemnity": True, **IDENTITY}
    )
    assert INDEMNITY[language] in with_it and "D441-5" in with_it
