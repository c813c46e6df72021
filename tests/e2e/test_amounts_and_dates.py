"""Simulator findings on amounts, currencies and dates in the promise form, replayed through the
signed SMS webhook against the real processes (CI model):

- a debtor who owes pounds was told "noted: €200.00"; "200 euros" was taken as pounds;
- "100 bucks the 3rd of next month" was refused as too late (DIET split 'the 3rd of' and
  'next month'), and "the 15th of january" noted as 15 December (the month dropped);
- amounts in words or slang ("deux mille cinq cents euros", "150 balles vendredi", "ill pay 200
  on friday") were cut or taken as a date, and the form asked "how much?" again.

Own debtors (+33639987071..., +12025557071..., postcodes 75031.../60641...).
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from relance.db.models import Promise

from .conftest import RunningStack
from .test_conversation_never_breaks import _add_debtor, _say, _session, _wording

# They prove how amounts and dates are read, not the database: the SQLite pass only (`once`), as CI has to stay short.
pytestmark = [pytest.mark.e2e, pytest.mark.once, pytest.mark.timeout(1200)]


def _promises(stack: RunningStack, debtor_id: int) -> list[tuple[int, str, date]]:
    with _session(stack) as session:
        rows = session.scalars(select(Promise).where(Promise.debtor_id == debtor_id)).all()
        return [(p.amount_minor, p.currency, p.promised_date) for p in rows]


@pytest.mark.parametrize(
    ("language", "phone", "postcode", "turns", "foreign", "own", "shown"),
    [
        (
            "fr",
            "+33639987071",
            "75031",
            ["combien je dois ?", "75031", "je vous paierai le 20"],
            "200 euros",
            "200 livres",
            "200,00\u00a0£",
        ),
        (
            "en",
            "+12025557071",
            "60641",
            ["how much do i owe", "60641", "i'll pay on the 20th"],
            "200 euros",
            "200 pounds",
            "£200.00",
        ),
    ],
    ids=["fr", "en"],
)
def test_a_promise_is_in_the_accounts_currency(
    e2e_stack: RunningStack,
    language: str,
    phone: str,
    postcode: str,
    turns: list[str],
    foreign: str,
    own: str,
    shown: str,
) -> None:
    tag = f"gbp{language}"
    debtor = _add_debtor(
        e2e_stack,
        f"C-GBP-{language}",
        phone,
        language=language,
        postcode=postcode,
        amount="900.00",
        currency="GBP",
    )
    said = [_say(e2e_stack, phone, text, tag, n) for n, text in enumerate(turns)]
    said.append(_say(e2e_stack, phone, foreign, tag, len(said)))
    assert _promises(e2e_stack, debtor.id) == [], said  # not silently taken as pounds
    assert any("£" in reply and "€" not in reply for reply in said[-1]), said
    said.append(_say(e2e_stack, phone, own, tag, len(said)))
    assert any(shown in reply for reply in said[-1]), said
    [(amount, currency, when)] = _promises(e2e_stack, debtor.id)
    assert (amount, currency, when.day) == (20_000, "GBP", 20), said


_MONTH_NAMES = {
    "en": "january february march april may june july august september october november december",
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre décembre",
}


def _third_of_next_month(today: date) -> date:
    return (today.replace(day=1) + timedelta(days=32)).replace(day=3)


@pytest.mark.parametrize(
    ("language", "phone", "postcode", "opening", "later", "third", "amount"),
    [
        (
            "fr",
            "+33639987072",
            "75032",
            ["je vais payer", "75032"],
            "et le reste le {day} {month}",
            "le 3 du mois prochain",
            "100 dollars",
        ),
        (
            "en",
            "+12025557072",
            "60642",
            ["i will pay", "60642"],
            "and the rest on the {day}th of {month}",
            "the 3rd of next month",
            "100 dollars",
        ),
    ],
    ids=["fr", "en"],
)
def test_a_date_cut_in_pieces_keeps_its_month(
    e2e_stack: RunningStack,
    language: str,
    phone: str,
    postcode: str,
    opening: list[str],
    later: str,
    third: str,
    amount: str,
) -> None:
    """'the 15th of january' (six weeks on) was noted as the 15th of this month; 'the 3rd of
    next month' refused as too late (read as this month's 3rd)."""
    tag = f"dates{language}"
    debtor = _add_debtor(
        e2e_stack,
        f"C-DATES-{language}",
        phone,
        language=language,
        postcode=postcode,
        amount="900.00",
        currency="USD",
    )
    today = date.today()
    said = [_say(e2e_stack, phone, text, tag, n) for n, text in enumerate(opening)]
    far = today + timedelta(days=45)  # past the 30-day window, its day a fortnight from now
    month = _MONTH_NAMES[language].split()[far.month - 1]
    said.append(_say(e2e_stack, phone, later.format(day=far.day, month=month), tag, 2))
    too_late = {"fr": "Je ne peux accepter qu'une date", "en": "I can only accept a date"}[language]
    assert any(reply.startswith(too_late) for reply in said[-1]), said
    said.append(_say(e2e_stack, phone, third, tag, 3))
    target = _third_of_next_month(today)
    if target > today + timedelta(days=30):  # the 1st to the 3rd of a month: still too late
        assert any(reply.startswith(too_late) for reply in said[-1]), said
        return
    amount_question = _wording("utter_ask_promise_amount", language)
    assert said[-1][-1].startswith(amount_question), said
    said.append(_say(e2e_stack, phone, amount, tag, 4))
    assert _promises(e2e_stack, debtor.id) == [(10_000, "USD", target)], said


@pytest.mark.parametrize(
    ("language", "phone", "postcode", "turns", "expected"),
    [
        (
            "fr",
            "+33639987073",
            "75033",
            ["combien je dois ?", "75033", "je paie 150 balles vendredi"],
            15_000,
        ),
        (
            "en",
            "+12025557073",
            "60643",
            ["how much do i owe", "60643", "ill pay 200 on friday"],
            20_000,
        ),
        (
            "fr",
            "+33639987074",
            "75034",
            ["combien je dois ?", "75034", "je vous paierai le 20", "deux mille cinq cents euros"],
            250_000,
        ),
    ],
    ids=["fr-balles", "en-on-friday", "fr-in-words"],
)
def test_an_amount_in_words_or_slang_is_read_whole(
    e2e_stack: RunningStack,
    language: str,
    phone: str,
    postcode: str,
    turns: list[str],
    expected: int,
) -> None:
    """'ill pay 200 on friday' ('200' taken as a date) and '150 balles vendredi' were asked
    "how much?"; 'deux mille cinq cents euros' gave the amount 'deux'."""
    tag = f"words{phone[1:3]}{phone[-2:]}"
    debtor = _add_debtor(
        e2e_stack,
        f"C-WORDS-{phone[1:3]}{phone[-2:]}",
        phone,
        language=language,
        postcode=postcode,
        amount="3000.00",
        currency="EUR" if language == "fr" else "USD",
    )
    said = [_say(e2e_stack, phone, text, tag, n) for n, text in enumerate(turns)]
    promises = _promises(e2e_stack, debtor.id)
    assert [amount for amount, _, _ in promises] == [expected], said
