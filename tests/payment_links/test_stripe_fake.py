"""The Checkout fake behaves like Stripe for the stripe-python client (shapes, errors, signing)."""

from __future__ import annotations

import time

import pytest
import stripe

from tests.support.stripe_fake import StripeFake


@pytest.fixture
def stripe_client(stripe_server):
    stripe_server.reset()
    return stripe.StripeClient(
        "sk_test_relance", base_addresses={"api": stripe_server.base_url}, max_network_retries=0
    )


def _params(**extra):
    return {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 2,
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 1250,
                    "product_data": {"name": "F-1"},
                },
            }
        ],
        "success_url": "https://example.test/ok",
        "cancel_url": "https://example.test/ko",
        "metadata": {"relance_link_id": "7"},
        "client_reference_id": "link-7",
        **extra,
    }


def test_create_and_retrieve_have_stripe_shapes(stripe_client):
    session = stripe_client.v1.checkout.sessions.create(params=_params())

    assert isinstance(session, stripe.checkout.Session)
    assert session.id.startswith("cs_test_") and session.object == "checkout.session"
    assert session.amount_total == 2500 and session.currency == "eur"
    assert session.status == "open" and session.payment_status == "unpaid"
    assert session.payment_intent is None and session.mode == "payment"
    assert session.metadata["relance_link_id"] == "7" and session.client_reference_id == "link-7"
    assert session.url and session.expires_at > time.time() + 23 * 3600

    again = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert again.id == session.id and again.amount_total == 2500

    expired = stripe_client.v1.checkout.sessions.expire(session.id)
    assert expired.status == "expired" and expired.url is None


def test_errors_match_stripe(stripe_client, stripe_server):
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.checkout.sessions.retrieve("cs_test_nope")
    assert missing.value.code == "resource_missing" and missing.value.http_status == 404

    with pytest.raises(stripe.InvalidRequestError) as unknown:
        stripe_client.v1.checkout.sessions.create(params=_params(colour="blue"))  # type: ignore[arg-type]
    assert unknown.value.param == "colour"

    with pytest.raises(stripe.InvalidRequestError) as too_soon:
        stripe_client.v1.checkout.sessions.create(params=_params(expires_at=int(time.time()) + 60))
    assert too_soon.value.param == "expires_at"

    anonymous = stripe.StripeClient(
        "pk_test_public", base_addresses={"api": stripe_server.base_url}
    )
    with pytest.raises(stripe.AuthenticationError):
        anonymous.v1.checkout.sessions.create(params=_params())


def test_idempotency_key_replays_the_same_session(stripe_client):
    one = stripe_client.v1.checkout.sessions.create(
        params=_params(), options={"idempotency_key": "k1"}
    )
    two = stripe_client.v1.checkout.sessions.create(
        params=_params(), options={"idempotency_key": "k1"}
    )
    assert one.id == two.id


def test_complete_creates_real_localstripe_objects(stripe_client, stripe_server):
    session = stripe_client.v1.checkout.sessions.create(
        params=_params(
            payment_intent_data={"setup_future_usage": "off_session", "metadata": {"a": "b"}},
            customer_creation="always",
        )
    )
    completed = stripe_server.complete(session.id)

    assert completed["status"] == "complete" and completed["payment_status"] == "paid"
    intent = stripe_client.v1.payment_intents.retrieve(completed["payment_intent"])  # via proxy
    assert intent.status == "succeeded" and intent.amount == 2500
    assert intent.customer == completed["customer"] and intent.metadata["a"] == "b"
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).payment_intent == intent.id


def test_signed_events_verify_with_stripe_python():
    event = StripeFake.event("checkout.session.completed", {"id": "cs_test_1"})
    payload, header = StripeFake.signed(event, "whsec_x")

    verified = stripe.Webhook.construct_event(payload, header, "whsec_x")

    assert verified.id == event["id"] and verified.type == "checkout.session.completed"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, header, "whsec_other")


def _sepa_debit(stripe_client, stripe_server, **extra):
    session = stripe_client.v1.checkout.sessions.create(
        params={
            "mode": "setup",
            "allowed_payment_method_types": ["sepa_debit"],
            "customer_creation": "always",
            "success_url": "https://example.test/ok",
        }
    )
    setup = stripe_server.complete_setup(session.id)
    params = {
        "amount": 2000,
        "currency": "eur",
        "customer": setup["customer"],
        "payment_method": setup["payment_method"],
        "mandate": setup["mandate"],
        "allowed_payment_method_types": ["sepa_debit"],
        "off_session": True,
        "confirm": True,
        "metadata": {"relance_charge_id": "9"},
        **extra,
    }
    return setup, params


def test_a_sepa_debit_is_processing_then_settles_or_fails_with_stripe_shapes(
    stripe_client, stripe_server
):
    _, params = _sepa_debit(stripe_client, stripe_server)

    intent = stripe_client.v1.payment_intents.create(params=params)  # type: ignore[arg-type]
    assert isinstance(intent, stripe.PaymentIntent) and intent.id.startswith("pi_")
    assert intent.status == "processing" and intent.payment_method_types == ["sepa_debit"]
    assert intent.amount_received == 0 and intent.metadata["relance_charge_id"] == "9"
    charge = stripe_client.v1.charges.retrieve(str(intent.latest_charge))
    assert charge.status == "pending" and charge.payment_method_details is not None
    assert charge.payment_method_details.type == "sepa_debit"
    assert stripe_client.v1.payment_intents.retrieve(intent.id).status == "processing"

    settled = stripe_server.settle_debit(intent.id)
    assert settled["status"] == "succeeded" and settled["amount_received"] == 2000
    returned = stripe_server.fail_debit(intent.id, "account_closed")
    assert returned["status"] == "requires_payment_method" and returned["amount_received"] == 0
    error = returned["last_payment_error"]
    assert error["code"] == "account_closed" and error["payment_method"]["type"] == "sepa_debit"
    assert stripe_client.v1.charges.retrieve(str(intent.latest_charge)).failure_code == (
        "account_closed"
    )


def test_sepa_debit_errors_and_idempotency_match_stripe(stripe_client, stripe_server):
    setup, params = _sepa_debit(stripe_client, stripe_server)

    with pytest.raises(stripe.InvalidRequestError) as dollars:
        stripe_client.v1.payment_intents.create(params={**params, "currency": "usd"})  # type: ignore[arg-type]
    assert dollars.value.param == "currency"
    with pytest.raises(stripe.InvalidRequestError) as no_mandate:
        stripe_client.v1.payment_intents.create(
            params={k: v for k, v in params.items() if k != "mandate"}  # type: ignore[arg-type]
        )
    assert no_mandate.value.param == "mandate"
    with pytest.raises(stripe.InvalidRequestError) as other_customer:
        stripe_client.v1.payment_intents.create(params={**params, "customer": "cus_other"})  # type: ignore[arg-type]
    assert other_customer.value.param == "payment_method"

    one = stripe_client.v1.payment_intents.create(
        params=params,  # type: ignore[arg-type]
        options={"idempotency_key": "relance-installment-1-attempt-1"},
    )
    two = stripe_client.v1.payment_intents.create(
        params=params,  # type: ignore[arg-type]
        options={"idempotency_key": "relance-installment-1-attempt-1"},
    )
    assert one.id == two.id and len(stripe_server.sepa_intents) == 1
    with pytest.raises(stripe.IdempotencyError):
        stripe_client.v1.payment_intents.create(
            params={**params, "amount": 2500},  # type: ignore[arg-type]
            options={"idempotency_key": "relance-installment-1-attempt-1"},
        )

    stripe_client.v1.payment_methods.detach(setup["payment_method"])
    with pytest.raises(stripe.InvalidRequestError) as detached:
        stripe_client.v1.payment_intents.create(params=params)  # type: ignore[arg-type]
    assert detached.value.param == "payment_method"


def _card_on_file(stripe_client):
    """A customer with a card attached to it (localstripe's), as a plan's card is kept."""
    customer = stripe_client.v1.customers.create(params={"email": "payer@example.com"})
    method = stripe_client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    stripe_client.v1.payment_methods.attach(method.id, params={"customer": customer.id})
    return customer.id, method.id


def test_a_card_declined_by_its_issuer_answers_stripes_card_error(stripe_client, stripe_server):
    customer, method = _card_on_file(stripe_client)
    stripe_server.decline_card(method, "card_declined", "insufficient_funds")
    params = {
        "amount": 2500,
        "currency": "gbp",
        "customer": customer,
        "payment_method": method,
        "off_session": True,
        "confirm": True,
        "metadata": {"relance_charge_key": "k"},
    }

    with pytest.raises(stripe.CardError) as declined:
        stripe_client.v1.payment_intents.create(params=params, options={"idempotency_key": "a1"})  # type: ignore[arg-type]

    error = declined.value.error
    assert declined.value.http_status == 402 and declined.value.code == "card_declined"
    assert error is not None and error.type == "card_error"
    assert error.decline_code == "insufficient_funds"
    assert error.message == "Your card has insufficient funds." and error.charge
    intent = error.payment_intent
    assert intent is not None and intent.status == "requires_payment_method"
    assert intent.amount == 2500 and intent.metadata["relance_charge_key"] == "k"
    assert intent.last_payment_error is not None
    assert intent.last_payment_error.decline_code == "insufficient_funds"
    assert intent.last_payment_error.code == "card_declined"
    # As payment_intent.payment_failed carries it, and the same answer under the same key.
    assert stripe_server.intent(intent.id)["last_payment_error"]["decline_code"] == (
        "insufficient_funds"
    )
    with pytest.raises(stripe.CardError) as again:
        stripe_client.v1.payment_intents.create(params=params, options={"idempotency_key": "a1"})  # type: ignore[arg-type]
    assert again.value.error is not None and again.value.error.payment_intent is not None
    assert again.value.error.payment_intent.id == intent.id

    # Stripe's expired-card decline has the code alone, no decline_code.
    stripe_server.decline_card(method, "expired_card")
    with pytest.raises(stripe.CardError) as expired:
        stripe_client.v1.payment_intents.create(params=params)  # type: ignore[arg-type]
    assert expired.value.code == "expired_card" and expired.value.error is not None
    assert expired.value.error.decline_code is None
