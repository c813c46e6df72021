"""The sandbox honours Stripe's published test cards (docs.stripe.com/testing, "Declined
payments"), through its HTTP pages: each declining card sends the signed
`payment_intent.payment_failed` Stripe sends for it (its `code` and `decline_code`), recorded as
a real decline is, the checkout page then giving the reason a debtor is given (a lost, stolen or
fraudulent card reads as a plain decline) while the code names it for collectors; a card kept on
file declines its off-session charges the same way. The page lists the cards, in French and
English; a number that is not a card, or a form the page never sends, is a 400 and stores
nothing."""

from __future__ import annotations

import html
from datetime import date

import pytest
from sqlalchemy import func, select

from console.payment_methods import failure_label
from payment_links.pages import translate
from payment_links.providers.sandbox_cards import TEST_CARDS
from payment_links.service import create_link
from relance.db.models import AuditEvent, Payment, Task, WebhookEvent
from relance.ledger.models import InstallmentCharge
from tests.factories import make_debtor, make_invoice
from tests.portal import test_card_on_file as cards
from tests.portal.conftest import sign_in
from tests.support.sandbox_checkout import completion

TODAY = date(2026, 3, 10)
# Stripe's table: number -> (error code, decline code) in `last_payment_error`; the code
# recorded (the issuer's reason when there is one); the wording key of the reason the page gives.
DECLINES = {
    "4000000000000002": ("card_declined", "generic_decline", "generic_decline", "sandbox_declined"),
    "4000000000009995": (
        "card_declined",
        "insufficient_funds",
        "insufficient_funds",
        "sandbox_declined_insufficient_funds",
    ),
    "4000000000009987": ("card_declined", "lost_card", "lost_card", "sandbox_declined"),
    "4000000000009979": ("card_declined", "stolen_card", "stolen_card", "sandbox_declined"),
    "4100000000000019": ("card_declined", "fraudulent", "fraudulent", "sandbox_declined"),
    "4000000000000069": ("expired_card", None, "expired_card", "sandbox_declined_card_expired"),
    "4000000000000127": ("incorrect_cvc", None, "incorrect_cvc", "sandbox_declined_card_details"),
    "4000000000000119": (
        "processing_error",
        None,
        "processing_error",
        "sandbox_declined_our_side",
    ),
    "4000000000000341": ("card_declined", "generic_decline", "generic_decline", "sandbox_declined"),
}


def _words(text: str) -> str:
    return " ".join(html.unescape(text).split())


def _start(client, db, language):
    debtor = make_debtor(db, language=language, channels=("sms",))
    make_invoice(db, debtor, 4990, due=TODAY)
    link, url = create_link(db, debtor=debtor, purpose="balance")
    db.flush()
    checkout = client.post(url.removeprefix("http://testserver"), follow_redirects=False)
    return debtor, link, checkout.headers["location"].removeprefix("http://testserver")


def _stored(db):
    return tuple(
        db.scalar(select(func.count()).select_from(model))
        for model in (WebhookEvent, AuditEvent, Payment)
    )


def test_the_declines_table_is_stripes() -> None:
    assert {c.number: (c.code, c.decline_code) for c in TEST_CARDS if c.declines} == {
        number: row[:2] for number, row in DECLINES.items()
    }


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("number", list(DECLINES))
def test_each_declining_test_card_is_declined_as_stripe_declines_it(
    client, db, gateway, number, language
):
    code, decline_code, recorded, wording = DECLINES[number]
    debtor, link, checkout = _start(client, db, language)
    complete, returns = completion(checkout)

    declined = client.post(complete, data={**returns, "outcome": "card", "card": number})

    # Stripe Checkout keeps the debtor on its page to try another card, saying why.
    assert declined.status_code == 200 and declined.url.path == checkout.split("?")[0]
    alert = _words(declined.text.split('role="alert">')[1].split("</p>")[0])
    assert alert == _words(translate(language, wording))
    db.expire_all()
    event = db.scalars(
        select(WebhookEvent).where(WebhookEvent.kind == "payment_intent.payment_failed")
    ).one()
    error = event.payload["data"]["object"]["last_payment_error"]
    assert (error["code"], error.get("decline_code")) == (code, decline_code)
    failed = db.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "payment.failed", AuditEvent.debtor_id == debtor.id
        )
    ).one()
    assert (failed.details["code"], failed.details["decline_code"]) == (recorded, decline_code)
    assert not failure_label(recorded).startswith("Not described here")  # named to collectors
    assert db.scalar(select(func.count(Payment.id))) == 0 and link.paid_at is None


@pytest.mark.parametrize("number", ["4000000000009987", "4000000000009979", "4100000000000019"])
def test_a_lost_stolen_or_fraudulent_card_is_told_as_a_plain_decline(client, db, gateway, number):
    _debtor, _link, checkout = _start(client, db, "en")
    complete, returns = completion(checkout)

    page = client.post(complete, data={**returns, "outcome": "card", "card": number}).text

    alert = _words(page.split('role="alert">')[1].split("</p>")[0])
    assert alert == "The card was declined. You can try again."
    assert not any(word in alert.lower() for word in ("lost", "stolen", "fraud"))


@pytest.mark.parametrize("typed", ["4242 4242 4242 4242", "5555-5555-5555-4444"])
def test_a_typed_paying_card_pays(client, db, gateway, typed):
    debtor, link, checkout = _start(client, db, "fr")
    complete, returns = completion(checkout)

    paid = client.post(
        complete, data={**returns, "outcome": "card", "number": typed}, follow_redirects=False
    )

    assert paid.status_code == 303 and paid.headers["location"] == returns["success"]
    db.expire_all()
    payment = db.scalars(select(Payment).where(Payment.debtor_id == debtor.id)).one()
    assert payment.amount_minor == 4990 and link.paid_at is not None


def test_a_typed_declining_card_is_declined_like_a_picked_one(client, db, gateway):
    _debtor, _link, checkout = _start(client, db, "en")
    complete, returns = completion(checkout)

    page = client.post(
        complete, data={**returns, "outcome": "card", "number": "4000 0000 0000 9995"}
    )

    assert "there are not enough funds" in _words(page.text)
    failed = db.scalars(select(AuditEvent).where(AuditEvent.action == "payment.failed")).one()
    assert failed.details["code"] == "insufficient_funds"


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_checkout_page_lists_the_test_cards_in_the_debtors_language(
    client, db, gateway, language
):
    _debtor, _link, checkout = _start(client, db, language)

    page = _words(client.get(checkout).text)

    assert translate(language, "sandbox_cards_heading") in page
    for card in TEST_CARDS:
        wording = _words(translate(language, f"test_card_{card.key}"))
        assert f"{card.grouped}</span> — {wording}</button>" in page
        assert f'name="card" value="{card.number}"' in page


@pytest.mark.parametrize(
    "form",
    [
        {"outcome": "card", "number": "4242 4242 4242 4241"},  # Stripe's incorrect_number card
        {"outcome": "card", "number": "not a card"},
        {"outcome": "card"},
        {"outcome": "refund_me"},
    ],
)
def test_a_bad_form_is_refused_and_stores_nothing(client, db, gateway, form):
    _debtor, link, checkout = _start(client, db, "en")
    complete, returns = completion(checkout)
    before = _stored(db)

    answer = client.post(complete, data={**returns, **form}, follow_redirects=False)

    assert answer.status_code == 400 and "location" not in answer.headers
    text = _words(answer.text)
    assert (
        translate("en", "sandbox_invalid_card") in text
        or translate("en", "sandbox_bad_outcome") in text
    )
    assert _stored(db) == before and link.paid_at is None


def test_a_typed_invalid_number_is_given_back_to_correct(client, db, gateway):
    _debtor, _link, checkout = _start(client, db, "fr")
    complete, returns = completion(checkout)

    answer = client.post(complete, data={**returns, "outcome": "card", "number": "4242 4241"})

    assert answer.status_code == 400
    assert 'value="4242 4241"' in answer.text and 'aria-invalid="true"' in answer.text
    assert _words(translate("fr", "sandbox_invalid_card")) in _words(answer.text)


def test_a_decline_reason_the_sandbox_never_gives_is_refused(client, db, gateway):
    _debtor, _link, checkout = _start(client, db, "en")

    answer = client.get(f"{checkout}&declined=stolen_card")

    assert answer.status_code == 400
    assert translate("en", "sandbox_bad_declined") in _words(answer.text)


# Off-session: the debtor's saved test card, charged by the worker's pass. Code recorded on the
# charge, and the words of the failure message the debtor gets (utter_installment_charge_failed).
SAVED = [
    ("4000 0000 0000 9995", "insufficient_funds", "there were not enough funds on the account"),
    ("4000 0000 0000 9987", "lost_card", "your card was declined by its bank"),
    ("4000 0000 0000 9979", "stolen_card", "your card was declined by its bank"),
    ("4100 0000 0000 0019", "fraudulent", "your card was declined by its bank"),
    ("4000 0000 0000 0002", "generic_decline", "your card was declined by its bank"),
    ("4000 0000 0000 0069", "expired_card", "your card has expired"),
    ("4000 0000 0000 0127", "incorrect_cvc", "did not accept its details"),
    ("4000 0000 0000 0119", "processing_error", "a technical problem on our side"),
    ("4000 0000 0000 0341", "generic_decline", "your card was declined by its bank"),
]


@pytest.mark.parametrize(("number", "code", "said"), SAVED)
def test_a_saved_test_card_declines_its_off_session_charges_the_same_way(
    client, db, gateway, sandbox_payments, number, code, said
):
    portal = cards._portal(db, language="en", country="US", currency="USD")
    csrf = sign_in(client, portal)
    plan = cards._accept_plan(client, db, portal, csrf)
    cards._give_card(client, cards._card_page(client, portal, plan, csrf), number)

    first, _reports = cards._charge_first(db, plan)

    charge = db.scalars(
        select(InstallmentCharge).where(InstallmentCharge.installment_id == first.id)
    ).one()
    assert (charge.status, charge.failure_code) == ("failed", code)
    task = db.scalars(select(Task).where(Task.debtor_id == portal.debtor.id)).one()
    assert task.details["code"] == code
    (text,) = [t for t in gateway.texts_for(portal.debtor) if "did not go through" in t]
    assert said in text
    assert not any(word in text.lower() for word in ("lost", "stolen", "fraud"))
