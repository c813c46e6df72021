"""Identity check rules."""

from __future__ import annotations

from sqlalchemy.orm import Session

from relance.identity.service import check_answer
from tests.console import factories


def test_postcode_and_customer_number(db: Session) -> None:
    debtor = factories.debtor(db, postcode="75011", customer_number="C-104233")
    assert check_answer(debtor, "75011", method="postcode")
    assert check_answer(debtor, "mon code postal est 75 011", method="postcode")
    assert not check_answer(debtor, "75012", method="postcode")
    assert check_answer(debtor, "c104233", method="customer_number")
    assert not check_answer(debtor, "75011", method="customer_number")


def test_no_record_never_matches(db: Session) -> None:
    debtor = factories.debtor(db, postcode=None)
    assert not check_answer(debtor, "", method="postcode")
    assert not check_answer(debtor, "75011", method="postcode")
