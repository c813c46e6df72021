"""Casework refusals are the project's errors, one code per case, and nothing is sent or stored.

The console routes show `message` on the conversation page (test_conversation.py); these tests pin
the class and `code` a client or a future API endpoint would branch on.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from console import casework
from console.inbox import parse_amount
from relance.conversations.ports import DeliveryError
from relance.db.base import utcnow
from relance.db.models import Conversation, Invoice, PaymentLink, Promise, User
from relance.errors import Conflict, InvalidContent, PolicyViolation, RelanceError, Unavailable
from tests.console.conftest import FakeGateway, FakeRasa
from tests.factories import make_dispute, make_handed_off_case, make_plan, make_user


def _code(error: type[RelanceError], call, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(error) as refused:
        call(*args, **kwargs)
    return refused.value.code


def _owned(db: Session, user: User) -> Conversation:
    _owner, conv, _handoff = make_handed_off_case(db)
    casework.take_over(db, conv, user)
    return conv


def test_reply_refusals_have_a_code_each(
    db: Session, collector: User, gateway: FakeGateway, rasa: FakeRasa
) -> None:
    _owner, conv, _handoff = make_handed_off_case(db)
    assert _code(Conflict, casework.reply, db, conv, collector, "Hi") == "not_taken_over"
    other = make_user(db, "collector")
    casework.take_over(db, conv, other)
    assert _code(Conflict, casework.reply, db, conv, collector, "Hi") == "owned_by_another"
    conv = _owned(db, collector)
    assert _code(InvalidContent, casework.reply, db, conv, collector, "  ") == "reply_required"
    too_long = "x" * (casework.MAX_REPLY + 1)
    assert _code(InvalidContent, casework.reply, db, conv, collector, too_long) == "reply_too_long"
    conv.debtor.contacts[0].opted_out_at = utcnow()
    db.flush()
    assert _code(PolicyViolation, casework.reply, db, conv, collector, "Hi") == "contact_opted_out"
    conv.last_channel = "whatsapp"
    assert _code(Conflict, casework.reply, db, conv, collector, "Hi") == "no_contact"
    assert gateway.sent == []


@pytest.mark.parametrize(("retryable", "error"), [(True, Unavailable), (False, Conflict)])
def test_a_failed_send_says_whether_to_retry(
    db: Session,
    collector: User,
    gateway: FakeGateway,
    rasa: FakeRasa,
    retryable: bool,
    error: type[RelanceError],
) -> None:
    conv = _owned(db, collector)
    gateway.fail_with = DeliveryError("carrier said no", retryable=retryable, code="30006")
    with pytest.raises(error) as refused:
        casework.reply(db, conv, collector, "Hello")
    assert refused.value.code == "delivery_failed"
    assert refused.value.details == {"delivery_code": "30006"}


def test_decisions_and_promises_refuse_with_a_code(
    db: Session, collector: User, rasa: FakeRasa
) -> None:
    owner, conv, _handoff = make_handed_off_case(db)
    plan = make_plan(db, owner, [7_500] * 8, with_installments=False, status="pending_approval")
    casework.decide_plan(db, plan, collector, approve=False)
    assert (
        _code(Conflict, casework.decide_plan, db, plan, collector, approve=True)
        == "plan_not_pending"
    )
    dispute = make_dispute(db, owner)
    assert (
        _code(InvalidContent, casework.decide_dispute, db, dispute, collector, upheld=True, note="")
        == "note_required"
    )
    casework.decide_dispute(db, dispute, collector, upheld=False, note="not founded")
    assert (
        _code(Conflict, casework.decide_dispute, db, dispute, collector, upheld=True, note="x")
        == "dispute_closed"
    )
    promise = {"currency": "EUR", "promised_date": date.today() + timedelta(days=3)}
    assert (
        _code(
            InvalidContent, casework.record_promise, db, conv, collector, amount_minor=0, **promise
        )
        == "invalid_amount"
    )
    promise["promised_date"] = date.today() - timedelta(days=1)
    assert (
        _code(
            InvalidContent, casework.record_promise, db, conv, collector, amount_minor=1, **promise
        )
        == "promise_date_past"
    )
    assert db.scalars(select(Promise).where(Promise.debtor_id == owner.id)).all() == []


def test_a_payment_link_for_nothing_owed_is_the_link_services_refusal(
    db: Session, collector: User, gateway: FakeGateway, rasa: FakeRasa
) -> None:
    conv = _owned(db, collector)
    for invoice in db.scalars(select(Invoice).where(Invoice.debtor_id == conv.debtor_id)):
        invoice.status = "paid"
    db.flush()
    assert _code(PolicyViolation, casework.send_payment_link, db, conv, collector) == "nothing_owed"
    assert (
        _code(InvalidContent, casework.send_payment_link, db, conv, collector, amount_minor=-5)
        == "invalid_amount"
    )
    assert db.scalars(select(PaymentLink)).all() == [] and gateway.sent == []


@pytest.mark.parametrize("text", ["abc", "1.234"])
def test_an_amount_the_console_cannot_read_is_invalid_content(text: str) -> None:
    assert _code(InvalidContent, parse_amount, text, "EUR") == "invalid_amount"
