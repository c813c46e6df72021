"""A plan that collects itself outside the euro zone, through HTTP: a debtor whom SEPA Direct Debit
cannot reach (living outside the euro zone, or owing in another currency) accepts a plan on the
portal and is offered a card on file instead of a mandate; the card is given on the sandbox's
page (a test number, checked, never stored), each installment is charged off-session by the
worker's pass, a declined card starts the follow-up, and the debtor stops it from the portal."""

from __future__ import annotations

import html
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from portal.pages import translate
from relance.db.models import Message, Payment, PaymentLink, PaymentPlan, Task
from relance.followups.service import run_followups
from relance.ledger.models import InstallmentCharge, SavedPaymentMethod
from relance.nlg.formatting import long_date
from relance.portal.access import issue_access
from tests.factories import make_debtor, make_invoice
from tests.portal.conftest import POSTCODE, Portal, sign_in

GOOD_CARD = "4242 4242 4242 4242"
DECLINING_CARD = "4000 0000 0000 0341"


def _portal(db, *, language: str = "en", country: str = "GB", currency: str = "EUR") -> Portal:
    debtor = make_debtor(
        db,
        language=language,
        country=country,
        postcode=POSTCODE,
        timezone="Europe/Paris",
        channels=("sms",),
    )
    due = date.today() - timedelta(days=20)
    invoices = [make_invoice(db, debtor, 30_000, due=due, currency=currency)]
    _, url = issue_access(db, debtor)
    db.flush()
    path = url.removeprefix("http://testserver")
    return Portal(debtor, invoices, path, path.rsplit("/", 1)[-1])


def _accept_plan(client, db, portal, csrf) -> PaymentPlan:
    response = client.post(
        f"{portal.path}/plan/accept",
        data={"installments": "3", "frequency": "monthly", "csrf_token": csrf},
    )
    assert response.status_code == 200, response.text
    return db.scalars(select(PaymentPlan).where(PaymentPlan.debtor_id == portal.debtor.id)).one()


def _card_page(client, portal, plan, csrf) -> str:
    """Through the consent page to the sandbox's card page; its path."""
    assert client.get(f"{portal.path}/plans/{plan.id}/card").status_code == 200
    started = client.post(
        f"{portal.path}/plans/{plan.id}/card", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert started.status_code == 303
    page = started.headers["location"].removeprefix("http://testserver")
    assert page.startswith("/pay/sandbox/card-setup/seti_sandbox_")
    return page


def _give_card(client, page: str, number: str):
    form = client.get(page)
    assert form.status_code == 200
    back = html.unescape(form.text.split('name="return_url" value="')[1].split('"')[0])
    return client.post(
        page.split("?")[0], data={"number": number, "return_url": back}, follow_redirects=False
    )


def _methods(db, portal) -> list[SavedPaymentMethod]:
    return list(
        db.scalars(
            select(SavedPaymentMethod).where(SavedPaymentMethod.debtor_id == portal.debtor.id)
        )
    )


PASS_TIME = time(17, 0)  # UTC: inside the contact hours in Paris, London, Chicago and Denver


def _charge_first(db, plan):
    """Worker passes from the first installment's date until it is paid or was tried (a Sunday
    or a public holiday is outside the contact window)."""
    first = plan.installments[0]
    reports = []
    for offset in range(6):
        day = first.due_date + timedelta(days=offset)
        report = run_followups(db, day, now=datetime.combine(day, PASS_TIME, UTC))
        reports.append(report)
        if report.charged or report.charge_failures:
            break
    return first, reports


@pytest.mark.parametrize(
    ("country", "currency"),
    [("GB", "EUR"), ("US", "USD"), ("FR", "GBP")],
    ids=["outside-the-euro-zone", "usd-abroad", "gbp-in-france"],
)
def test_a_plan_sepa_cannot_collect_is_offered_a_card_on_file(
    client, db, gateway, sandbox_payments, country, currency
):
    portal = _portal(db, country=country, currency=currency)
    csrf = sign_in(client, portal)
    plan = _accept_plan(client, db, portal, csrf)

    home = html.unescape(client.get(portal.path).text)
    assert translate("en", "card_offer") in home
    assert translate("en", "direct_debit_offer") not in home
    assert f"{portal.path}/plans/{plan.id}/card" in home
    sepa = client.get(f"{portal.path}/plans/{plan.id}/direct-debit")
    assert sepa.status_code == 422  # and no mandate for a plan SEPA cannot collect


def test_a_euro_plan_in_the_euro_zone_is_offered_sepa_not_a_card(
    client, db, gateway, sandbox_payments
):
    portal = _portal(db, language="fr", country="FR")
    csrf = sign_in(client, portal)
    plan = _accept_plan(client, db, portal, csrf)
    home = html.unescape(client.get(portal.path).text)
    assert translate("fr", "direct_debit_offer") in home
    assert translate("fr", "card_offer") not in home
    refused = client.get(f"{portal.path}/plans/{plan.id}/card")
    assert refused.status_code == 422
    assert translate("fr", "error_card_not_available") in html.unescape(refused.text)
    posted = client.post(f"{portal.path}/plans/{plan.id}/card", data={"csrf_token": csrf})
    assert posted.status_code == 422 and _methods(db, portal) == []


def test_the_consent_names_creditor_provider_amounts_and_dates_and_is_stored(
    client, db, gateway, sandbox_payments, settings
):
    portal = _portal(db, language="fr", country="CH")
    csrf = sign_in(client, portal)
    plan = _accept_plan(client, db, portal, csrf)

    shown = html.unescape(client.get(f"{portal.path}/plans/{plan.id}/card").text)
    first, last = plan.installments[0].due_date, plan.installments[-1].due_date
    assert f"vous autorisez {settings.creditor_name} à la débiter" in shown
    assert "par l'intermédiaire de Relance Sandbox (prestataire de démonstration)" in shown
    assert f"du {long_date(first, 'fr')} au {long_date(last, 'fr')}" in shown
    assert "3 échéances mensuelles" in shown
    page = _card_page(client, portal, plan, csrf)
    (saved,) = _methods(db, portal)
    assert (saved.kind, saved.status, saved.provider) == ("card", "pending", "sandbox")
    assert saved.mandate_text and saved.mandate_text in shown  # the text the debtor read
    assert saved.mandate_text in html.unescape(client.get(page).text)  # and the provider's page


def test_card_given_then_each_installment_charged_then_stopped_by_the_debtor(
    client, db, gateway, sandbox_payments
):
    portal = _portal(db, language="en", country="GB")
    csrf = sign_in(client, portal)
    plan = _accept_plan(client, db, portal, csrf)
    page = _card_page(client, portal, plan, csrf)

    bad = _give_card(client, page, "4242 4242 4242 4241")  # the Luhn sum fails
    assert bad.status_code == 400
    assert "This card number is not valid" in html.unescape(bad.text)
    assert 'aria-invalid="true" autofocus' in bad.text and "4242 4242 4242 4241" in bad.text
    assert [m.status for m in _methods(db, portal)] == ["pending"]

    given = _give_card(client, page, GOOD_CARD)
    assert given.status_code == 303
    assert given.headers["location"].endswith(f"{portal.path}?done=card")
    (saved,) = _methods(db, portal)
    assert (saved.status, saved.last4, saved.mandate_ref) == ("active", "4242", None)
    assert GOOD_CARD.replace(" ", "") not in (saved.payment_method_ref or "")
    home = html.unescape(client.get(f"{portal.path}?done=card").text)
    assert translate("en", "done_card") in home
    assert translate("en", "card_active_last4", last4="4242") in home
    assert translate("en", "card_offer") not in home  # given once
    # Paying the next instalment by hand is still possible, no longer the thing to do.
    assert translate("en", "pay_installment_now", seq=1) in home
    assert f">{translate('en', 'pay_installment', seq=1)}<" not in home
    kinds = [
        (m.extra or {}).get("portal_action")
        for m in db.scalars(select(Message).where(Message.channel == "portal"))
    ]
    assert "card_started" in kinds

    first, reports = _charge_first(db, plan)
    assert any(r.charged == [first.id] for r in reports)
    payment = db.scalars(select(Payment).where(Payment.debtor_id == portal.debtor.id)).one()
    assert (payment.method, payment.amount_minor) == ("card", first.amount_minor)
    assert first.status == "paid"

    stopped = client.post(f"{portal.path}/mandates/{saved.id}/revoke", data={"csrf_token": csrf})
    assert stopped.status_code == 200
    assert translate("en", "done_card_revoked") in html.unescape(stopped.text)
    db.refresh(saved)
    assert saved.status == "revoked"
    again = client.post(f"{portal.path}/mandates/{saved.id}/revoke", data={"csrf_token": csrf})
    assert again.status_code == 409
    assert translate("en", "error_card_stopped") in html.unescape(again.text)
    # No charge after the debtor stopped it, on days the pass did reach the debtor.
    second = plan.installments[1]
    reports = [
        run_followups(db, day, now=datetime.combine(day, PASS_TIME, UTC))
        for day in (second.due_date + timedelta(days=n) for n in range(6))
    ]
    assert any(portal.debtor.id not in r.deferred_debtor_ids for r in reports)
    assert all(r.charged == [] and r.charge_failures == [] for r in reports)
    assert (
        db.scalar(
            select(func.count(InstallmentCharge.id)).where(
                InstallmentCharge.installment_id == second.id
            )
        )
        == 0
    )
    assert second.status != "paid"


def test_a_declined_card_starts_the_follow_up(client, db, gateway, sandbox_payments):
    portal = _portal(db, language="en", country="US", currency="USD")
    csrf = sign_in(client, portal)
    plan = _accept_plan(client, db, portal, csrf)
    assert _give_card(client, _card_page(client, portal, plan, csrf), DECLINING_CARD).status_code
    (saved,) = _methods(db, portal)
    assert (saved.status, saved.last4) == ("active", "0341")

    first, reports = _charge_first(db, plan)
    assert any(r.charge_failures == [first.id] for r in reports), reports
    assert first.status == "due"
    task = db.scalars(select(Task).where(Task.debtor_id == portal.debtor.id)).one()
    assert task.details["reason"] == "charge_failed" and task.details["kind"] == "card"
    link = db.scalars(select(PaymentLink).where(PaymentLink.debtor_id == portal.debtor.id)).one()
    assert link.installment_id == first.id and link.currency == "USD"
    assert any("/pay/" in text for text in gateway.texts_for(portal.debtor))


def test_sandbox_card_page_refuses_unknown_set_ups_and_foreign_return_urls(
    client, db, gateway, sandbox_payments
):
    assert client.get("/pay/sandbox/card-setup/seti_sandbox_nope").status_code == 404
    portal = _portal(db, language="fr", country="GB")
    csrf = sign_in(client, portal)
    plan = _accept_plan(client, db, portal, csrf)
    page = _card_page(client, portal, plan, csrf).split("?")[0]
    given = client.post(
        page,
        data={"number": GOOD_CARD, "return_url": "https://evil.example/portal/x"},
        follow_redirects=False,
    )
    assert given.status_code == 200 and "Carte enregistrée" in html.unescape(given.text)
    assert client.post(page, data={"number": GOOD_CARD}).status_code == 404  # used


def test_the_card_page_leads_back_to_the_account(client, db, gateway, sandbox_payments):
    portal = _portal(db, language="en", country="GB")
    csrf = sign_in(client, portal)
    plan = _accept_plan(client, db, portal, csrf)
    page = _card_page(client, portal, plan, csrf)
    back = f'<a href="{portal.path}"><span aria-hidden="true">← </span>Back to my account</a>'

    form = client.get(page)
    refused = client.post(
        page.split("?")[0],
        data={"number": "4242 4242 4242 4241", "cancel_url": f"http://testserver{portal.path}"},
    )

    assert form.status_code == 200 and back in form.text
    assert refused.status_code == 400 and back in refused.text
