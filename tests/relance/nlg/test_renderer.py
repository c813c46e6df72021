from __future__ import annotations

import random

import pytest

from relance.nlg.formatting import long_date, money
from relance.nlg.renderer import TemplateFailed, UnknownResponse, render, validate_templates
from relance.nlg.templates_store import bundled_templates

TEMPLATES = {
    "utter_balance": [
        {
            "en": "You owe {{ balance_minor | money(currency) }} due {{ due | date }}.",
            "fr": "Vous devez {{ balance_minor | money(currency) }} au {{ due | date }}.",
        },
        {
            "tone": "firm",
            "en": "Firm: {{ balance_minor | money(currency) }}.",
            "fr": "Ferme : {{ balance_minor | money(currency) }}.",
        },
        {"channel": "voice", "en": "Spoken balance.", "fr": "Solde parlé."},
    ]
}


def test_money_and_dates_are_formatted_per_locale() -> None:
    assert money(123456, "EUR", "fr") == "1\u202f234,56\xa0€"
    assert money(123456, "GBP", "en") == "£1,234.56"
    assert long_date("2026-03-15", "fr") == "15 mars 2026"
    assert long_date("2026-03-15", "en") == "15 March 2026"


def test_variant_chosen_by_language_tone_and_channel() -> None:
    variables = {"balance_minor": 5000, "currency": "EUR", "due": "2026-12-01"}
    assert render(TEMPLATES, "utter_balance", language="fr", variables=variables) == (
        "Vous devez 50,00\xa0€ au 1 décembre 2026."
    )
    assert (
        render(TEMPLATES, "utter_balance", language="en", variables=variables, tone="firm")
        == "Firm: €50.00."
    )
    assert (
        render(TEMPLATES, "utter_balance", language="en", variables=variables, channel="voice")
        == "Spoken balance."
    )


def test_unknown_response_and_language_fallback() -> None:
    with pytest.raises(UnknownResponse):
        render(TEMPLATES, "utter_nope", language="fr")
    assert render(
        TEMPLATES,
        "utter_balance",
        language="de",
        variables={"balance_minor": 1, "currency": "EUR", "due": "2026-12-01"},
        rng=random.Random(0),
    ).startswith("Vous devez")


def test_sandbox_blocks_unsafe_template_code() -> None:
    """Admins edit templates: internals must not leak through them (the blocked attribute is
    undefined, and printing it is refused like any missing value)."""
    evil = {"utter_x": [{"en": "[{{ ''.__class__.__mro__ }}]", "fr": "x"}]}
    with pytest.raises(TemplateFailed, match="missing"):
        render(evil, "utter_x", language="en")


def test_validation_reports_missing_language_and_syntax() -> None:
    problems = validate_templates({"utter_a": [{"en": "ok {{"}], "utter_b": []})
    assert any("utter_a[0]: missing fr" in p for p in problems)
    assert any("utter_a[0] (en)" in p for p in problems)
    assert any("utter_b" in p for p in problems)


def test_bundled_wording_is_complete_in_both_languages() -> None:
    templates = bundled_templates()
    assert validate_templates(templates) == []
    for name in ("utter_holding_reply", "utter_unknown_number"):
        assert name in templates


def test_a_reply_seeds_no_new_random_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seeding a `random.Random()` reads 2.5 KB of the OS's randomness; per reply it was the
    largest single cost of an e-mail in the dispatcher's batches (issue 19). Variants are still
    drawn, from one generator for the process."""
    templates = {
        "utter_either": [{"fr": "Bonjour.", "en": "Hello."}, {"fr": "Salut.", "en": "Hi."}]
    }
    render(templates, "utter_either", language="fr")  # the process's generator, made once
    made: list[object] = []
    real = random.Random

    class Counting(real):  # type: ignore[misc,valid-type]
        def __init__(self, *args: object) -> None:
            made.append(args)
            super().__init__(*args)

    monkeypatch.setattr(random, "Random", Counting)
    seen = {render(templates, "utter_either", language="fr") for _ in range(200)}
    assert made == []
    assert seen == {"Bonjour.", "Salut."}  # still drawn at random


@pytest.mark.parametrize(
    ("language", "requested", "opening"),
    [
        ("en", 10, "I can't go that far, but I can offer 3 monthly payments"),
        ("en", 3, "That's possible with a larger first payment: 3 monthly payments"),
        ("fr", 10, "Je ne peux pas aller jusque-là, mais je peux vous proposer 3 versements"),
        ("fr", 3, "C'est possible avec un premier versement plus important : 3 versements"),
    ],
)
def test_a_counter_offer_of_the_count_asked_for_says_only_the_first_payment_changes(
    language: str, requested: int, opening: str
) -> None:
    """6 instalments asked, 6 offered with a down payment: "I can't go that far" contradicted
    the very count the debtor had asked for (seen in the simulator)."""
    text = render(
        bundled_templates(),
        "utter_plan_counter_offer",
        language=language,
        variables={
            "installments": 3,
            "frequency": "monthly",
            "first_minor": 15_000,
            "installment_minor": 7_500,
            "first_date": "2026-12-07",
            "last_date": "2027-02-07",
            "currency": "EUR",
            "requested_installments": requested,
        },
    )
    assert text.replace("\u00a0", " ").replace("\u202f", " ").startswith(opening), text
