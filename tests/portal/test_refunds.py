"""What the debtor sees on the portal when the creditor refunded a payment: the invoice is shown
as a refund under review (not as contested by them, not silently due again), with a line saying
the payment was refunded; an instalment whose charge was refunded or charged back says so."""

from __future__ import annotations

import html
from datetime import date

import pytest

from portal.pages import translate
from relance.ledger.service import record_payment
from relance.settings import get_settings
from tests.factories import make_installment_charge, make_mandate, make_plan
from tests.payment_links.test_stripe_refunds import _deliver, refund
from tests.portal.conftest import make_portal, sign_in


def _words(text: str) -> str:
    return " ".join(html.unescape(text).split())


@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_refunded_payment_shows_its_invoice_under_review(client, db, gateway, language):
    portal = make_portal(db, language=language, amounts=(12000,))
    csrf = sign_in(client, portal)
    assert csrf
    invoice = portal.invoices[0]
    record_payment(
        db,
        debtor_id=portal.debtor.id,
        amount_minor=12000,
        currency="EUR",
        method="card",
        provider="stripe",
        provider_ref="pi_portal_refunded",
        invoice_ids=[invoice.id],
        thank=False,
    )
    paid_home = _words(client.get(portal.path).text)
    assert translate(language, "invoice_no", number=invoice.number) not in paid_home

    answer = _deliver(client, "refund.created", refund("pi_portal_refunded", amount=12000))
    assert answer.json()["outcome"] == "payment_refunded"

    home = _words(client.get(portal.path).text)
    creditor = get_settings().creditor_name
    said = _words(translate(language, "reason_refunded", creditor=creditor))
    assert said in home
    assert translate(language, "refund_review") in home
    assert f">{translate(language, 'disputed')}<" not in home
    assert f'value="{invoice.id}"' not in home  # on hold: not offered for payment meanwhile


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("status", ["refunded", "disputed_lost"])
def test_an_instalment_whose_charge_went_back_says_so(client, db, gateway, language, status):
    portal = make_portal(db, language=language, amounts=(20000,))
    sign_in(client, portal)
    plan = make_plan(
        db, portal.debtor, [10_000, 10_000], first_due=date.today(), invoices=portal.invoices
    )
    card = make_mandate(db, portal.debtor, plan, kind="card", last4="4242")
    make_installment_charge(db, plan.installments[0], card, status=status, reversed_ref="x_1")

    home = _words(client.get(portal.path).text)

    creditor = get_settings().creditor_name
    assert _words(translate(language, f"charge_{status}", creditor=creditor)) in home
