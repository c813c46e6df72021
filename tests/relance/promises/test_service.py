"""Promise window and recording."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy.orm import Session

from relance.errors import InvalidContent
from relance.promises.service import MAX_PROMISE_DAYS, check_date, record_promise
from tests.factories import make_debtor, make_invoice

TODAY = date(2026, 11, 23)


def test_date_window() -> None:
    assert check_date(TODAY, TODAY) == "ok"
    assert check_date(TODAY - timedelta(days=1), TODAY) == "past"
    assert check_date(TODAY + timedelta(days=MAX_PROMISE_DAYS + 1), TODAY) == "too_late"


def test_new_promise_supersedes_the_pending_one(db: Session) -> None:
    debtor = make_debtor(db)
    make_invoice(db, debtor)
    first = record_promise(db, debtor, amount_minor=5000, promised_date=TODAY, currency="EUR")
    second = record_promise(db, debtor, amount_minor=6000, promised_date=TODAY, currency="EUR")
    assert first.status == "cancelled" and second.status == "pending"
    assert len(second.invoice_ids) == 1
    with pytest.raises(InvalidContent) as refused:
        record_promise(db, debtor, amount_minor=0, promised_date=TODAY, currency="EUR")
    assert refused.value.code == "invalid_amount"
