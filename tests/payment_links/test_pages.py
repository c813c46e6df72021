"""Payer pages: the debtor's language, clear pages for dead links, and no provider call for them."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from payment_links.service import create_link
from relance.db.base import utcnow
from relance.db.models import AuditEvent
from tests.factories import make_debtor, make_invoice

TODAY = date(2026, 3, 10)


def _link(db, *, language="fr", amount=7500):
    debtor = make_debtor(db, language=language, channels=("sms",))
    invoice = make_invoice(db, debtor, amount, due=TODAY)
    link, url = create_link(db, debtor=debtor, purpose="balance")
    db.flush()
    return debtor, invoice, link, url.removeprefix("http://testserver")


def test_open_link_page_in_french(client, db, settings):
    _, invoice, _, path = _link(db)

    response = client.get(path)

    assert response.status_code == 200
    assert '<html lang="fr">' in response.text
    assert "Régler votre solde" in response.text
    assert "75,00\u00a0€" in response.text
    assert invoice.number in response.text
    assert settings.creditor_name in response.text
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


def test_open_link_page_in_english(client, db):
    _, _, _, path = _link(db, language="en", amount=1234)

    response = client.get(path)

    assert response.status_code == 200
    assert "Pay your balance" in response.text and "€12.34" in response.text


def test_unknown_token_is_a_clear_404(client, db):
    response = client.get("/pay/not-a-real-token", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert response.status_code == 404
    assert "This payment link is not valid" in response.text


def test_expired_link_page_and_no_provider_call(client, db, stripe_settings, stripe_server):
    _, _, link, path = _link(db)
    link.expires_at = utcnow() - timedelta(minutes=1)
    db.flush()

    page = client.get(path)
    post = client.post(path, follow_redirects=False)

    assert page.status_code == 410 and post.status_code == 410
    assert "Ce lien de paiement a expiré" in post.text
    assert stripe_server.checkout_requests() == []


def test_used_link_page_and_no_provider_call(client, db, stripe_settings, stripe_server):
    _, _, link, path = _link(db, language="en")
    link.paid_at = utcnow()
    db.flush()

    post = client.post(path, follow_redirects=False)

    assert post.status_code == 410
    assert "already been used to pay €75.00" in post.text
    assert stripe_server.checkout_requests() == []
    assert (
        db.scalar(select(AuditEvent.id).where(AuditEvent.action == "payment_link.checkout_started"))
        is None
    )


def test_settled_link_when_invoices_paid_elsewhere(client, db):
    _, invoice, _, path = _link(db)
    invoice.status = "paid"
    db.flush()

    response = client.post(path, follow_redirects=False)

    assert response.status_code == 410
    assert "déjà réglées" in response.text


def test_cancelled_checkout_shows_retry_notice(client, db):
    _, _, _, path = _link(db)
    response = client.get(path + "?checkout=cancelled")
    assert response.status_code == 200 and "Vous pouvez réessayer" in response.text
