"""A plan that collects itself, through HTTP: plan accepted on the portal, SEPA mandate on the
sandbox's page (IBAN checked, never stored), installment debited by the worker's pass, mandate
revoked by the debtor."""

from __future__ import annotations

import html
from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlencode

from sqlalchemy import func, select

from relance.db.models import Message, Payment, PaymentPlan, WebhookEvent
from relance.followups.service import run_followups
from relance.ledger.models import SavedPaymentMethod
from tests.factories import make_plan
from tests.portal.conftest import make_portal, sign_in

IBAN = "FR14 2004 1010 0505 0001 3M0 2606"


def _accept_plan(client, db, portal, csrf):
    response = client.post(
        f"{portal.path}/plan/accept",
        data={"installments": "3", "frequency": "monthly", "csrf_token": csrf},
    )
    assert response.status_code == 200
    return db.scalars(select(PaymentPlan).where(PaymentPlan.debtor_id == portal.debtor.id)).one()


def _mandate_page(client, portal, plan, csrf):
    offer = client.get(f"{portal.path}/plans/{plan.id}/direct-debit")
    assert offer.status_code == 200
    assert "(A) Relance Demo SAS" in html.unescape(offer.text)  # the mandate text, fr or en
    started = client.post(
        f"{portal.path}/plans/{plan.id}/direct-debit",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert started.status_code == 303
    page = started.headers["location"].removeprefix("http://testserver")
    assert page.startswith("/pay/sandbox/mandate/seti_sandbox_")
    return page


def _charge_first(db, plan):
    """Worker passes from the first installment's date, at 11:00 Paris time, until it is paid
    (a Sunday or a public holiday is outside the contact window: the pass waits)."""
    first = plan.installments[0]
    reports = []
    for offset in range(6):
        day = first.due_date + timedelta(days=offset)
        reports.append(run_followups(db, day, now=datetime.combine(day, time(10, 0), UTC)))
        if first.status == "paid":
            break
    return first, reports


def test_accept_plan_then_mandate_then_the_job_debits_the_installment(
    client, db, gateway, sandbox_payments
):
    portal = make_portal(db, language="fr")
    csrf = sign_in(client, portal)
    plan = _accept_plan(client, db, portal, csrf)
    home = html.unescape(client.get(portal.path).text)
    assert "Payer chaque échéance automatiquement par prélèvement SEPA" in home

    page = _mandate_page(client, portal, plan, csrf)
    form = client.get(page)
    assert form.status_code == 200 and "vous autorisez (A)" in html.unescape(form.text)
    return_url = html.unescape(form.text.split('name="return_url" value="')[1].split('"')[0])
    bad = client.post(
        page.split("?")[0],
        data={"iban": "FR14 2004 1010 0505 0001 3M0 2607", "outcome": "ok", "return_url": ""},
    )
    assert bad.status_code == 400 and "IBAN n'est pas valable" in html.unescape(bad.text)
    saved = db.scalars(
        select(SavedPaymentMethod).where(SavedPaymentMethod.debtor_id == portal.debtor.id)
    ).one()
    assert saved.status == "pending" and db.scalar(select(func.count(WebhookEvent.id))) == 0

    signed = client.post(
        page.split("?")[0],
        data={"iban": IBAN, "outcome": "ok", "return_url": return_url},
        follow_redirects=False,
    )
    assert signed.status_code == 303
    assert signed.headers["location"].endswith(f"{portal.path}?done=mandate")
    db.refresh(saved)
    assert (saved.status, saved.last4) == ("active", "2606")
    home = html.unescape(client.get(portal.path).text)
    assert f"mandat {saved.mandate_reference}, compte se terminant par 2606" in home
    assert "2004 1010" not in home

    first, reports = _charge_first(db, plan)
    assert any(r.debits_processing == [first.id] for r in reports)
    payment = db.scalars(select(Payment).where(Payment.debtor_id == portal.debtor.id)).one()
    assert payment.method == "sepa_debit" and payment.amount_minor == first.amount_minor


def test_the_debtor_revokes_the_mandate_on_the_portal(client, db, gateway, sandbox_payments):
    portal = make_portal(db, language="en")
    csrf = sign_in(client, portal)
    plan = _accept_plan(client, db, portal, csrf)
    page = _mandate_page(client, portal, plan, csrf)
    client.post(page.split("?")[0], data={"iban": IBAN, "outcome": "ok", "return_url": ""})
    saved = db.scalars(
        select(SavedPaymentMethod).where(SavedPaymentMethod.debtor_id == portal.debtor.id)
    ).one()
    assert saved.status == "active"

    forged = client.post(f"{portal.path}/mandates/{saved.id}/revoke", data={"csrf_token": "x"})
    assert forged.status_code == 403 and saved.status == "active"
    revoked = client.post(f"{portal.path}/mandates/{saved.id}/revoke", data={"csrf_token": csrf})

    assert revoked.status_code == 200 and "direct debit mandate is revoked" in revoked.text
    db.refresh(saved)
    assert saved.status == "revoked"
    notes = db.scalars(select(Message).where(Message.channel == "portal")).all()
    assert any((m.extra or {}).get("portal_action") == "mandate_revoked" for m in notes)
    again = client.post(f"{portal.path}/mandates/{saved.id}/revoke", data={"csrf_token": csrf})
    assert again.status_code == 409
    _, reports = _charge_first(db, plan)
    assert all(r.debits_processing == [] for r in reports)


def test_sandbox_mandate_page_refuses_unknown_setups_and_foreign_return_urls(
    client, db, gateway, sandbox_payments
):
    assert client.get("/pay/sandbox/mandate/seti_sandbox_nope").status_code == 404
    portal = make_portal(db, language="fr")
    csrf = sign_in(client, portal)
    plan = _accept_plan(client, db, portal, csrf)
    page = _mandate_page(client, portal, plan, csrf).split("?")[0]

    outside = client.post(
        page,
        data={"iban": "US64SVBKUS6S3300958879", "outcome": "ok", "return_url": ""},
    )
    assert outside.status_code == 400
    signed = client.post(
        page,
        data={"iban": IBAN, "outcome": "late", "return_url": "https://evil.example/portal/x"},
        follow_redirects=False,
    )
    assert signed.status_code == 200 and "Mandat enregistré" in signed.text
    assert client.post(page, data={"iban": IBAN, "outcome": "ok"}).status_code == 404  # used


def test_the_mandate_text_names_the_creditor_and_the_provider_in_use(
    client, db, gateway, sandbox_payments, settings
):
    portal = make_portal(db, language="fr")
    csrf = sign_in(client, portal)
    plan = _accept_plan(client, db, portal, csrf)

    shown = html.unescape(client.get(f"{portal.path}/plans/{plan.id}/direct-debit").text)
    named = (
        f"vous autorisez (A) {settings.creditor_name} et Relance Sandbox "
        "(prestataire de démonstration), notre prestataire de services de paiement"
    )
    assert named in shown and "Stripe" not in shown
    page = _mandate_page(client, portal, plan, csrf)
    saved = db.scalars(
        select(SavedPaymentMethod).where(SavedPaymentMethod.debtor_id == portal.debtor.id)
    ).one()
    assert saved.provider == "sandbox" and named in saved.mandate_text
    assert named in html.unescape(client.get(page).text)  # the provider's page shows the same


def test_direct_debit_page_refuses_plans_it_is_not_offered_for_in_the_debtors_language(
    client, db, gateway, sandbox_payments
):
    portal = make_portal(db, language="fr")
    csrf = sign_in(client, portal)
    foreign_plan = make_plan(db, make_portal(db, language="fr").debtor)

    unknown = client.get(f"{portal.path}/plans/999999/direct-debit")
    assert unknown.status_code == 404
    assert "Ce plan de paiement n'existe pas." in html.unescape(unknown.text)
    assert "(A)" not in unknown.text  # no mandate text for a plan that is not there
    assert client.get(f"{portal.path}/plans/{foreign_plan.id}/direct-debit").status_code == 404

    plan = _accept_plan(client, db, portal, csrf)
    page = _mandate_page(client, portal, plan, csrf)
    client.post(page.split("?")[0], data={"iban": IBAN, "outcome": "ok", "return_url": ""})
    again = client.get(f"{portal.path}/plans/{plan.id}/direct-debit")
    assert again.status_code == 409
    assert "Ce plan est déjà réglé automatiquement" in html.unescape(again.text)

    finished = make_plan(db, portal.debtor, status="completed")
    not_offered = client.get(f"{portal.path}/plans/{finished.id}/direct-debit")
    assert not_offered.status_code == 422
    assert "n'est proposé que pour les plans en euros" in html.unescape(not_offered.text)
    refused = client.post(
        f"{portal.path}/plans/{finished.id}/direct-debit", data={"csrf_token": csrf}
    )
    assert refused.status_code == 422
    assert db.scalar(select(func.count(SavedPaymentMethod.id))) == 1  # the one given above


def test_sandbox_mandate_page_keeps_what_was_typed_after_a_refusal(
    client, db, gateway, sandbox_payments
):
    portal = make_portal(db, language="en")
    csrf = sign_in(client, portal)
    plan = _accept_plan(client, db, portal, csrf)
    page = _mandate_page(client, portal, plan, csrf).split("?")[0]

    typed = "FR14 2004 1010 0505 0001 3M0 2607"
    refused = client.post(page, data={"iban": typed, "outcome": "late", "return_url": ""})

    assert refused.status_code == 400
    text = html.unescape(refused.text)
    assert "This IBAN is not valid. Check it and try again." in text
    assert f'value="{typed}"' in text and 'aria-invalid="true" autofocus' in text
    assert 'value="late" checked' in text  # the chosen outcome too
    saved = db.scalars(
        select(SavedPaymentMethod).where(SavedPaymentMethod.debtor_id == portal.debtor.id)
    ).one()
    assert (saved.status, saved.last4) == ("pending", None)


def test_the_mandate_page_leads_back_to_the_account_without_a_thank_you(
    client, db, gateway, sandbox_payments
):
    """The set-up's cancel URL is the portal page itself (its return URL says `done=mandate`,
    the thanks for a mandate given): the sandbox shows it as "Back to my account", on the form
    and on the form refused; a cancel URL off the portal gives no link."""
    portal = make_portal(db, language="fr")
    csrf = sign_in(client, portal)
    plan = _accept_plan(client, db, portal, csrf)
    page = _mandate_page(client, portal, plan, csrf)
    back = f'<a href="{portal.path}"><span aria-hidden="true">← </span>Retour à mon compte</a>'

    form = client.get(page)
    refused = client.post(
        page.split("?")[0],
        data={
            "iban": "FR14 2004 1010 0505 0001 3M0 2607",
            "outcome": "ok",
            "return_url": f"http://testserver{portal.path}?done=mandate",
            "cancel_url": f"http://testserver{portal.path}",
        },
    )
    forged = client.get(
        page.split("?")[0] + "?" + urlencode({"cancel": "https://evil.example/portal/x"})
    )

    assert form.status_code == 200 and back in form.text
    assert refused.status_code == 400 and back in refused.text
    assert forged.status_code == 200 and "Retour à mon compte" not in forged.text
    assert "evil.example" not in forged.text
