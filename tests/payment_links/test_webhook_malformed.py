"""Correctly signed Stripe bodies we cannot read, and signatures dated in the future (issues 17.4,
17.7): each is a 4xx with a clear message, never a 500 (Stripe would retry it for days), and
nothing is stored: no webhook event, no payment, no audit row."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import date

import pytest
from sqlalchemy import func, select

from payment_links.service import create_link, link_metadata
from relance.db.models import AuditEvent, Payment, PaymentReview, WebhookEvent
from tests.factories import make_debtor, make_invoice
from tests.support.stripe_fake import StripeFake

SECRET = "whsec_test_secret"  # tests/conftest.py TEST_ENV


def _signed_bytes(payload: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def _stored(db) -> tuple[int, ...]:
    return tuple(
        db.scalar(select(func.count()).select_from(m)) or 0
        for m in (WebhookEvent, Payment, AuditEvent, PaymentReview)
    )


@pytest.fixture
def link(db):
    debtor = make_debtor(db, channels=("sms",))
    make_invoice(db, debtor, 5000, due=date(2026, 3, 10))
    row, _ = create_link(db, debtor=debtor, purpose="balance")
    row.provider, row.provider_session_id = "stripe", "cs_test_malformed"
    db.flush()
    return row


def _session(link, **changes):
    obj = {
        "id": "cs_test_malformed",
        "object": "checkout.session",
        "amount_total": 5000,
        "currency": "eur",
        "metadata": link_metadata(link, "stripe"),
        "payment_intent": "pi_m",
        "payment_status": "paid",
        "status": "complete",
        "customer": None,
    }
    obj.update(changes)
    return obj


def _intent(link, **changes):
    obj = {
        "id": "pi_m",
        "object": "payment_intent",
        "amount": 5000,
        "amount_received": 5000,
        "currency": "eur",
        "metadata": link_metadata(link, "stripe"),
        "status": "succeeded",
    }
    obj.update(changes)
    return obj


CASES = {
    "no data": lambda link: {**StripeFake.event("checkout.session.completed", {}), "data": None},
    "data without object": lambda link: {
        **StripeFake.event("payment_intent.succeeded", {}),
        "data": {},
    },
    "object is a string": lambda link: {
        **StripeFake.event("payment_intent.succeeded", {}),
        "data": {"object": "pi_1"},
    },
    "string amount_total": lambda link: StripeFake.event(
        "checkout.session.completed", _session(link, amount_total="5000")
    ),
    "negative amount_total": lambda link: StripeFake.event(
        "checkout.session.completed", _session(link, amount_total=-5000)
    ),
    "missing amount_total": lambda link: StripeFake.event(
        "checkout.session.completed", _session(link, amount_total=None)
    ),
    "float amount_received": lambda link: StripeFake.event(
        "payment_intent.succeeded", _intent(link, amount_received=50.5)
    ),
    "negative amount_received": lambda link: StripeFake.event(
        "payment_intent.succeeded", _intent(link, amount_received=-1)
    ),
    "boolean amount": lambda link: StripeFake.event(
        "payment_intent.succeeded", _intent(link, amount_received=True)
    ),
    "amount beyond any money column": lambda link: StripeFake.event(
        "payment_intent.succeeded", _intent(link, amount_received=10**30)
    ),
    "currency not a code": lambda link: StripeFake.event(
        "payment_intent.succeeded", _intent(link, currency=978)
    ),
    "metadata is a list": lambda link: StripeFake.event(
        "payment_intent.succeeded", _intent(link, metadata=["relance_debtor_id"])
    ),
    "failure reason is a string": lambda link: StripeFake.event(
        "payment_intent.payment_failed", _intent(link, last_payment_error="declined")
    ),
    "no id": lambda link: {**StripeFake.event("payment_intent.succeeded", _intent(link)), "id": ""},
    "type is a number": lambda link: {
        **StripeFake.event("payment_intent.succeeded", _intent(link)),
        "type": 7,
    },
}


@pytest.mark.parametrize("case", list(CASES))
def test_signed_but_unreadable_event_is_400_and_stores_nothing(client, db, gateway, link, case):
    payload = json.dumps(CASES[case](link)).encode()
    before = _stored(db)

    response = client.post(
        "/stripe/webhook", content=payload, headers={"Stripe-Signature": _signed_bytes(payload)}
    )

    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "malformed_event" and body["message"]
    assert _stored(db) == before
    db.expire_all()
    assert link.paid_at is None


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'[{"id": "evt_1", "type": "payment_intent.succeeded"}]',
        b'"evt"',
        b"null",
        b"{not json",
    ],
)
def test_signed_body_that_is_not_an_event_object_is_400(client, db, body):
    before = _stored(db)
    response = client.post(
        "/stripe/webhook", content=body, headers={"Stripe-Signature": _signed_bytes(body)}
    )
    assert response.status_code == 400 and response.json()["code"] == "malformed_event"
    assert response.headers["content-type"] == "application/problem+json"
    assert _stored(db) == before


def test_event_types_we_do_not_handle_are_acknowledged_unread(client, db):
    """Nothing of theirs is read, so nothing can be malformed: 200, and Stripe stops retrying."""
    event = {**StripeFake.event("customer.updated", {}), "data": None}
    payload = json.dumps(event).encode()
    response = client.post(
        "/stripe/webhook", content=payload, headers={"Stripe-Signature": _signed_bytes(payload)}
    )
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"


def test_signature_dated_in_the_future_is_refused(client, db, gateway, link):
    event = StripeFake.event("checkout.session.completed", _session(link))
    before = _stored(db)
    for hours in (1, 24 * 365):
        payload, header = StripeFake.signed(
            event, SECRET, timestamp=int(time.time()) + 3600 * hours
        )
        response = client.post(
            "/stripe/webhook", content=payload, headers={"Stripe-Signature": header}
        )
        assert response.status_code == 400 and response.json()["code"] == "invalid_signature"
        assert response.headers["content-type"] == "application/problem+json"
        assert "future" not in response.text  # why it failed is logged, never told to a forger
    assert _stored(db) == before
    # A clock a minute ahead of ours is within the tolerance, as in Stripe's own check.
    payload, header = StripeFake.signed(event, SECRET, timestamp=int(time.time()) + 60)
    accepted = client.post("/stripe/webhook", content=payload, headers={"Stripe-Signature": header})
    assert accepted.status_code == 200 and accepted.json()["outcome"] == "recorded"


@pytest.mark.parametrize(
    ("field", "outcome"),
    [
        ("relance_debtor_id", "not_ours"),  # no debtor of ours: acknowledged, nothing recorded
        ("relance_link_id", "recorded"),  # the debtor's payment, tied to no link
        ("relance_installment_id", "recorded"),  # the link's payment, no installment
    ],
)
def test_ids_too_large_for_a_row_are_ignored(client, db, gateway, link, field, outcome):
    """`99999999999999999999` in metadata used to reach the database as a key (500)."""
    metadata = {**link_metadata(link, "stripe"), field: "99999999999999999999"}
    response = client.post(
        "/stripe/webhook",
        **_signed_json(
            StripeFake.event("payment_intent.succeeded", _intent(link, metadata=metadata))
        ),
    )
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == outcome


def _signed_json(event):
    payload = json.dumps(event).encode()
    return {"content": payload, "headers": {"Stripe-Signature": _signed_bytes(payload)}}
