"""Entity normalisation: dates, amounts, counts, frequencies, identity answers (fr + en)."""

from __future__ import annotations

from datetime import date

import pytest

from relance.nlu_normalise import (
    InstallmentAmount,
    amount_in_message,
    anchored_date,
    asks_to_change_plan,
    digits_only,
    installments_for,
    is_unknown_answer,
    parse_amount,
    parse_count,
    parse_date,
    parse_frequency,
    parse_installment_amount,
    wants_full_amount,
)

MONDAY = date(2026, 11, 23)


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("vendredi", "fr", date(2026, 11, 27)),
        ("vendredi prochain", "fr", date(2026, 11, 27)),
        ("next friday", "en", date(2026, 11, 27)),
        ("dm1", "fr", date(2026, 11, 24)),
        ("tmrw", "en", date(2026, 11, 24)),
        ("fin du mois", "fr", date(2026, 11, 30)),
        ("end of the month", "en", date(2026, 11, 30)),
        ("le 15", "fr", date(2026, 12, 15)),
        ("the 15th", "en", date(2026, 12, 15)),
        ("the twentieth", "en", date(2026, 12, 20)),
        ("le vingt", "fr", date(2026, 12, 20)),
        ("le 3 décembre", "fr", date(2026, 12, 3)),
        ("12/03", "fr", date(2027, 3, 12)),
        ("la semaine prochaine", "fr", date(2026, 11, 30)),
        ("dans deux semaines", "fr", date(2026, 12, 7)),
        ("début du mois prochain", "fr", date(2026, 12, 1)),
    ],
)
def test_future_dates(text: str, language: str, expected: date) -> None:
    assert parse_date(text, language, today=MONDAY) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hier", date(2026, 11, 22)),
        ("vendredi", date(2026, 11, 20)),
        ("last tuesday", date(2026, 11, 17)),
        ("le 15", date(2026, 11, 15)),
        ("il y a deux jours", date(2026, 11, 21)),
    ],
)
def test_past_dates(text: str, expected: date) -> None:
    assert parse_date(text, "fr", today=MONDAY, direction="past") == expected


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        # Simulator finding: DIET cut 'the 3rd of' from 'next month', and dropped 'january'.
        ("100 bucks the 3rd of next month", "en", date(2026, 12, 3)),
        ("and the rest on the 15th of january", "en", date(2027, 1, 15)),
        ("je paie le 3 du mois prochain", "fr", date(2026, 12, 3)),
        ("le trois du mois prochain", "fr", date(2026, 12, 3)),
        ("et le reste le 15 janvier", "fr", date(2027, 1, 15)),
        ("150 euros le premier janvier", "fr", date(2027, 1, 1)),
        ("january 15th then", "en", date(2027, 1, 15)),
        ("le 3 février 2027 ok", "fr", date(2027, 2, 3)),
        ("fin du mois prochain", "fr", date(2026, 12, 31)),  # was this month's end
        ("end of next month", "en", date(2026, 12, 31)),
        ("deux cent cinquante fin du mois", "fr", date(2026, 11, 30)),
    ],
)
def test_a_date_said_whole_is_read_inside_a_longer_message(
    text: str, language: str, expected: date
) -> None:
    assert parse_date(text, language, today=MONDAY) == expected
    assert anchored_date(text, language, today=MONDAY) == expected


@pytest.mark.parametrize("text", ["the 3rd of", "on the 15th", "next month", "200", "30 février"])
def test_a_piece_of_a_date_is_not_a_whole_one(text: str) -> None:
    assert anchored_date(text, "en", today=MONDAY) is None


def test_a_day_and_month_in_the_past_is_last_years_for_a_payment_made() -> None:
    assert anchored_date("le 30 décembre", "fr", today=MONDAY, direction="past") == date(
        2025, 12, 30
    )


def test_unreadable_date() -> None:
    assert parse_date("blabla", "fr", today=MONDAY) is None
    assert parse_date(None, "fr", today=MONDAY) is None


@pytest.mark.parametrize(
    ("text", "language", "minor"),
    [
        ("250 €", "fr", 25_000),
        ("€150", "en", 15_000),
        ("$1,200", "en", 120_000),
        ("1 200 €", "fr", 120_000),
        ("250,50 €", "fr", 25_050),
        ("250.50 eur", "en", 25_050),
        ("1.200,50 €", "fr", 120_050),
        ("deux cents euros", "fr", 20_000),
        ("two hundred euros", "en", 20_000),
        ("cent vingt euros", "fr", 12_000),
        ("fifty", "en", 5_000),
    ],
)
def test_amounts_in_minor_units(text: str, language: str, minor: int) -> None:
    assert parse_amount(text, language) == minor


def test_no_amount() -> None:
    assert parse_amount("je ne sais pas", "fr") is None


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("3 fois", 3),
        ("en trois fois", 3),
        ("six payments", 6),
        ("3x", 3),
        ("12 mois", 12),
        ("deux", 2),
        ("ten", 10),
        ("quatre mensualités", 4),
    ],
)
def test_counts(text: str, count: int) -> None:
    assert parse_count(text, "fr") == count


def test_count_rejects_nonsense() -> None:
    assert parse_count("bof", "fr") is None
    assert parse_count("500 fois", "fr") is None


@pytest.mark.parametrize(
    ("text", "frequency"),
    [
        ("par mois", "monthly"),
        ("weekly", "weekly"),
        ("toutes les deux semaines", "biweekly"),
        ("every 2 weeks", "biweekly"),
        ("mensualités", "monthly"),
        ("fortnightly", "biweekly"),
        ("chaque semaine", "weekly"),
        ("n'importe", None),
    ],
)
def test_frequencies(text: str, frequency: str | None) -> None:
    assert parse_frequency(text) == frequency


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("can I change my plan", True),
        ("can i change my payment plan?", True),
        ("I'd like to reschedule my instalments", True),
        ("je voudrais modifier mon échéancier", True),
        ("est-ce que je peux décaler ma prochaine échéance ?", True),
        # The plan without a change, a change of something else: not a plan change.
        ("when is my next instalment?", False),
        ("quelle est ma prochaine échéance ?", False),
        ("I want to change my phone number", False),
        ("il fait beau chez vous ?", False),
    ],
)
def test_a_plan_change_in_words(text: str, asks: bool) -> None:
    assert asks_to_change_plan(text) is asks


def test_identity_answers_and_markers() -> None:
    assert digits_only("sept cinq zéro un un", "fr") == "75011"
    assert digits_only("C-104 233") == "C104233"
    assert wants_full_amount("la totalité") and wants_full_amount("the full amount")
    assert not wants_full_amount("cent euros")
    assert is_unknown_answer("je n'ai pas la référence") and is_unknown_answer("I don't know")
    assert not is_unknown_answer("VIR-88412")


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("5 euros par mois", "fr", InstallmentAmount(500, "monthly")),
        ("5€/mois", "fr", InstallmentAmount(500, "monthly")),
        ("cinq euros par mois", "fr", InstallmentAmount(500, "monthly")),
        ("je peux payer 1 200,50 € par semaine", "fr", InstallmentAmount(120_050, "weekly")),
        ("deux cents euros", "fr", InstallmentAmount(20_000, None)),
        ("50 bucks a month", "en", InstallmentAmount(5000, "monthly")),
        ("fifty bucks a month", "en", InstallmentAmount(5000, "monthly")),
        ("fifty quid a month", "en", InstallmentAmount(5000, "monthly")),
        ("$50 monthly", "en", InstallmentAmount(5000, "monthly")),
        ("€75 every two weeks", "en", InstallmentAmount(7500, "biweekly")),
        # A bare figure right before a period, from 32 up (no day of the month is that large).
        ("could i pay 200 a month", "en", InstallmentAmount(20_000, "monthly")),
        ("je peux payer 200 par mois", "fr", InstallmentAmount(20_000, "monthly")),
        ("50 par mois", "fr", InstallmentAmount(5000, "monthly")),
        ("150/mois", "fr", InstallmentAmount(15_000, "monthly")),
        ("1 200 par mois", "fr", InstallmentAmount(120_000, "monthly")),
        ("maybe 80 every two weeks", "en", InstallmentAmount(8000, "biweekly")),
        ("100 monthly", "en", InstallmentAmount(10_000, "monthly")),
        ("deux cents par mois", "fr", InstallmentAmount(20_000, "monthly")),
    ],
)
def test_amount_per_installment(text: str, language: str, expected: InstallmentAmount) -> None:
    assert parse_installment_amount(text, language) == expected


@pytest.mark.parametrize(
    "text",
    [
        "en 3 fois par mois",
        "15 par mois",  # the 15th of each month, or 15 payments: ambiguous
        "le 5 de chaque mois",
        "3 fois par mois",
        "12 mensualités de 200",
        "3x 100 €",
        "six payments of $50",
        "75011",
        "200",
        "",
        "oui",
    ],
)
def test_not_an_amount_per_installment(text: str) -> None:
    """A count, a bare number, a day of the month or no number: left to the count parser."""
    assert parse_installment_amount(text, "fr") is None


def test_installments_for_rounds_up_within_bounds() -> None:
    assert installments_for(60_000, 10_000) == 6
    assert installments_for(60_001, 10_000) == 7
    assert installments_for(60_000, 500) == 120  # capped: the policy counter-offers anyway
    assert installments_for(60_000, 100_000) == 2  # more than the balance: still a plan


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("deux cent cinquante fin du mois", 25_000),
        ("deux mille cinq cents euros", 250_000),
        ("150 balles vendredi", 15_000),
        ("ill pay 200 on friday", 20_000),
        ("100 quid", 10_000),
        ("100 bucks the 3rd of next month", 10_000),
        ("le 15, 200 euros", 20_000),
        ("je paye 200 le 15", 20_000),
        ("i will pay in 10 days", None),  # a delay, not an amount
        ("je vais payer le 20", None),
        ("the 3rd of next month", None),
        ("en 3 fois", None),
        ("100 or 200", None),  # two figures: which one?
    ],
)
def test_the_amount_of_a_whole_message(text: str, expected: int | None) -> None:
    assert amount_in_message(text, "fr") == expected
    assert amount_in_message(text, "en") == expected
