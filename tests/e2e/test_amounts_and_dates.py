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

from datetime import date

import pytest
from sqlalchemy import select

from relance.db.models import Promise

from .conftest import RunningStack
from .test_conversation_never_breaks import _add_debtor, _say, _session

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]


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
