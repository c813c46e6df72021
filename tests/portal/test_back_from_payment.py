"""A payment started on the portal comes back to it: every payer page on the way offers "Back to
my account", and a paid checkout ends on the portal's page, which says the payment was received
(or, when the provider's webhook has not arrived yet, that it is being confirmed). The portal's
address travels through the browser, so only a portal page of this site is ever used: the
attacks below name other sites and get neither a link nor a redirect there."""

from __future__ import annotations

import html
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from payment_links.pages import translate as payer_translate
from portal.pages import translate
from relance.db.base import utcnow
from relance.db.models import PaymentLink
from relance.nlg.formatting import money
from tests.factories import make_invoice
from tests.portal.conftest import Portal, make_portal, sign_in
from tests.support.sandbox_checkout import completion

LANGUAGES = pytest.mark.parametrize("language", ["fr", "en"])
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}  # what Chromium sends on the sandbox's redirects
FROM_STRIPE = {"Sec-Fetch-Site": "cross-site"}  # back from checkout.stripe.com


def _words(page: str) -> str:
    return " ".join(html.unescape(page).split())


def _pay_everything(client: TestClient, portal: Portal, csrf: str) -> str:
    """The overview's "pay all": the payer page's path and query it sends the debtor to."""
    answer = client.post(
        f"{portal.path}/pay", data={"scope": "all", "csrf_token": csrf}, follow_redirects=False
    )
    assert answer.status_code == 303
    location = urlsplit(answer.headers["location"])
    return f"{location.path}?{location.query}"


def _checkout(client: TestClient, pay_page: str, return_url: str) -> str:
    """The payer page's button, posted as the page renders it (with the portal's address)."""
    answer = client.post(
        pay_page.split("?")[0], data={"return_url": return_url}, follow_redirects=False
    )
    assert answer.status_code == 303
    return answer.headers["location"]


def _link(db: Session, portal: Portal) -> PaymentLink:
    db.expire_all()
    return db.scalars(select(PaymentLink).where(PaymentLink.debtor_id == portal.debtor.id)).one()


@LANGUAGES
def test_a_payment_started_on_the_portal_ends_on_the_portal_with_the_payment(
    client, db, sandbox_payments, language
):
    portal = make_portal(db, language=language)  # 120 + 300 EUR
    csrf = sign_in(client, portal)
    back = payer_translate(language, "back_to_account")

    pay_page = _pay_everything(client, portal, csrf)
    assert pay_page.endswith(f"?return={quote(portal.path, safe='')}")
    page = client.get(pay_page).text
    assert f'<a href="{portal.path}"><span aria-hidden="true">← </span>{back}</a>' in page
    assert f'name="return_url" value="{portal.path}"' in page

    checkout = _checkout(client, pay_page, portal.path)
    complete, returns = completion(checkout)
    assert parse_qs(urlsplit(returns["success"]).query)["return"] == [portal.path]
    assert parse_qs(urlsplit(returns["cancel"]).query)["return"] == [portal.path]
    # Cancelled at the checkout: the payer page again, still with the way back.
    assert f'href="{portal.path}"' in client.get(returns["cancel"]).text

    paid = client.post(complete, data={**returns, "outcome": "success"}, headers=SAME_ORIGIN)

    link = _link(db, portal)
    assert link.paid_at is not None
    assert paid.status_code == 200
    assert str(paid.url) == f"http://testserver{portal.path}?done=paid&link={link.id}"
    amount = money(42_000, "EUR", language)
    assert translate(language, "done_paid", amount=amount) in html.unescape(paid.text)
    assert translate(language, "nothing_to_pay") in html.unescape(paid.text)


@LANGUAGES
def test_back_from_stripes_site_the_debtor_is_thanked_and_given_the_way_back(
    client, db, sandbox_payments, language
):
    """A browser coming back from another site would not send the portal's SameSite=Strict
    cookie through a redirect (the identity check again): it gets the payer page's thanks and a
    link, before and after the webhook has recorded the payment."""
    portal = make_portal(db, language=language)
    csrf = sign_in(client, portal)
    pay_page = _pay_everything(client, portal, csrf)
    complete, returns = completion(_checkout(client, pay_page, portal.path))
    link = _link(db, portal)
    target = html.escape(f"{portal.path}?done=paid&link={link.id}")

    early = client.get(returns["success"], headers=FROM_STRIPE, follow_redirects=False)
    assert early.status_code == 200 and f'<a class="button" href="{target}">' in early.text
    assert payer_translate(language, "confirming") in html.unescape(early.text)
    portal_early = client.get(f"{portal.path}?done=paid&link={link.id}").text
    amount = money(42_000, "EUR", language)
    confirming = translate(language, "done_paid_confirming", amount=amount)
    assert confirming in html.unescape(portal_early)

    client.post(complete, data={**returns, "outcome": "success"}, follow_redirects=False)
    for headers in (FROM_STRIPE, {}):  # a browser that says nothing is not redirected either
        later = client.get(returns["success"], headers=headers, follow_redirects=False)
        assert later.status_code == 200 and f'<a class="button" href="{target}">' in later.text
        assert payer_translate(language, "received_title") in html.unescape(later.text)


def test_an_instalment_paid_from_the_portal_comes_back_too(client, db, sandbox_payments):
    from tests.factories import make_plan

    portal = make_portal(db, language="fr", amounts=(40_000,))
    plan = make_plan(db, portal.debtor, [20_000, 20_000], invoices=portal.invoices)
    first = plan.installments[0]
    csrf = sign_in(client, portal)
    answer = client.post(
        f"{portal.path}/installments/{first.id}/pay",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    location = urlsplit(answer.headers["location"])
    assert parse_qs(location.query)["return"] == [portal.path]
    complete, returns = completion(_checkout(client, location.path, portal.path))

    paid = client.post(complete, data={**returns, "outcome": "success"}, headers=SAME_ORIGIN)

    assert paid.url.path == portal.path and paid.url.params["done"] == "paid"
    words = _words(paid.text)
    amount = " ".join(money(20_000, "EUR", "fr").split())
    assert f"Nous avons bien reçu votre paiement de {amount}." in words
    assert "Échéance 1 : 200,00 € le" in words and "payée" in words


FOREIGN = [
    "https://evil.example/portal/" + "a" * 43,
    "//evil.example/portal/" + "a" * 43,
    "http://testserver.evil.example/portal/" + "a" * 43,
    "http://testserver@evil.example/portal/" + "a" * 43,
    "/portal/" + "a" * 43 + "/../../console",
    "/portal/" + "a" * 43 + "?next=https://evil.example",
    "/portal/%2e%2e/console",
    "/console/",
    "javascript:alert(1)",
]


@pytest.mark.parametrize("forged", FOREIGN)
def test_a_return_address_off_the_portal_gets_no_link_and_no_redirect(
    client, db, sandbox_payments, forged
):
    """The attack: a payment link sent with `?return=` naming another site (or another page of
    this one). The debtor can still pay; nothing on the way links or redirects there, and the
    paid checkout ends on the payer page's own thanks."""
    portal = make_portal(db, language="en")
    csrf = sign_in(client, portal)
    pay_page = _pay_everything(client, portal, csrf).split("?")[0]
    back = payer_translate("en", "back_to_account")
    evil = "evil.example" if "evil" in forged else forged

    page = client.get(f"{pay_page}?{urlencode({'return': forged})}").text
    assert back not in page and "return_url" not in page and evil not in html.unescape(page)

    checkout = _checkout(client, pay_page, forged)
    complete, returns = completion(checkout)
    assert returns["success"] == f"http://testserver{pay_page}?checkout=success"
    client.post(complete, data={**returns, "outcome": "success"}, follow_redirects=False)
    ended = client.get(
        f"{pay_page}?{urlencode({'checkout': 'success', 'return': forged})}",
        headers=SAME_ORIGIN,
        follow_redirects=False,
    )
    assert ended.status_code == 200 and "location" not in ended.headers
    assert back not in ended.text and evil not in html.unescape(ended.text)
    assert payer_translate("en", "received_title") in ended.text


def test_pages_for_a_dead_link_opened_from_the_portal_keep_the_way_back(
    client, db, sandbox_payments
):
    portal = make_portal(db, language="fr")
    csrf = sign_in(client, portal)
    pay_page = _pay_everything(client, portal, csrf)
    link = _link(db, portal)
    link.expires_at = utcnow()
    db.flush()

    page = client.get(pay_page)
    posted = client.post(pay_page.split("?")[0], data={"return_url": portal.path})

    for answer in (page, posted):
        assert answer.status_code == 410
        assert f'<a class="button" href="{portal.path}">' in answer.text
        assert payer_translate("fr", "back_to_account") in answer.text


def test_the_portal_says_nothing_of_a_link_that_is_not_the_debtors(client, db, sandbox_payments):
    portal, other = make_portal(db, language="en"), make_portal(db, language="en")
    invoice = make_invoice(db, other.debtor, 77_700)
    link = PaymentLink(
        token_hash="x" * 64,
        debtor_id=other.debtor.id,
        purpose="balance",
        amount_minor=77_700,
        currency="EUR",
        invoice_ids=[invoice.id],
        expires_at=utcnow(),
        paid_at=utcnow(),
    )
    db.add(link)
    db.flush()
    sign_in(client, portal)

    page = client.get(f"{portal.path}?done=paid&link={link.id}")

    assert page.status_code == 200
    assert "777" not in page.text and 'class="notice"' not in page.text
    assert client.get(f"{portal.path}?done=paid&link=x").status_code == 422
