"""Promises to pay: a date (not too far) and an amount; reminders pause until that date.

The dunning planner skips invoices covered by a pending promise whose date has not passed, and
the follow-up worker reminds the debtor the day before and checks the money afterwards.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from sqlalchemy.orm import Session

from relance import audit
from relance.db.models import Debtor, Promise
from relance.db.models.enums import PromiseStatus
from relance.errors import InvalidContent
from relance.outbox.service import emit
from relance.promises import repository

# The furthest a debtor may promise without a collector: beyond that, a payment plan is the
# better tool (and a promise far away just delays the conversation).
MAX_PROMISE_DAYS = 30

DateCheck = Literal["ok", "past", "too_late"]


def latest_allowed(today: date) -> date:
    return today + timedelta(days=MAX_PROMISE_DAYS)


def check_date(promised: date, today: date) -> DateCheck:
    if promised < today:
        return "past"
    if promised > latest_allowed(today):
        return "too_late"
    return "ok"


def record_promise(
    session: Session,
    debtor: Debtor,
    *,
    amount_minor: int,
    promised_date: date,
    currency: str,
    source: str = "bot",
) -> Promise:
    """Record the promise over the open invoices; an earlier pending promise is superseded.
    A zero or negative amount is `InvalidContent("invalid_amount")`."""
    if amount_minor <= 0:
        raise InvalidContent("invalid_amount", "a promise needs a positive amount")
    for previous in repository.pending_promises(session, debtor.id):
        previous.status = PromiseStatus.CANCELLED
    promise = Promise(
        debtor_id=debtor.id,
        amount_minor=amount_minor,
        currency=currency,
        promised_date=promised_date,
        invoice_ids=repository.open_invoice_ids(session, debtor.id),
        source=source,
    )
    session.add(promise)
    session.flush()
    audit.record(
        session,
        actor=source,
        action="promise.recorded",
        entity=promise,
        debtor_id=debtor.id,
        amount_minor=amount_minor,
        currency=currency,
        promised_date=promised_date,
    )
    emit(
        session,
        "promise.made",
        debtor_id=debtor.id,
        promise_id=promise.id,
        amount_minor=amount_minor,
        currency=currency,
        promised_date=promised_date,
    )
    return promise
