"""The portal over HTTP: every action in French and English, and the attacks on it."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select, update

from portal.pages import translate
from relance.db.base import utcnow
from relance.db.models import (
    AuditEvent,
    Dispute,
    Handoff,
    Message,
    PaymentLink,
    PaymentPlan,
    Promise,
    Task,
)
from relance.db.models.enums import InvoiceStatus, PlanStatus
from relance.nlg.formatting import money
from relance.portal.access import revoke
from relance.portal.models import PortalAccess, PortalAttachment
from relance.settings import get_settings
from tests.factories import make_invoice
from tests.portal.conftest import POSTCODE, Portal, csrf_of, make_portal, sign_in

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"

LANGS = pytest.mark.parametrize(
    ("language", "phrases"),
    [
        ("fr", {"home": "Votre compte", "done_plan": "Votre plan de paiement est enregistré"}),
        ("en", {"home": "Your account", "done_plan": "Your payment plan is recorded"}),
    ],
)


def _timeline(db, portal: Portal, kind: str) -> list[Message]:
    rows = db.scalars(select(Message).where(Message.channel == "portal")).all()
    return [
        m
        for m in rows
        if (m.extra or {}).get("portal_action") == kind
        and m.conversation.debtor_id == portal.debtor.id
    ]


# --- identity -------------------------------------------------------------------------------


@LANGS
def test_identity_then_overview_in_each_language(client, db, language, phrases):
    portal = make_portal(db, language=language)

    first = client.get(portal.path)
    assert first.status_code == 200
    assert f'<html lang="{language}">' in first.text
    assert portal.invoices[0].number not in first.text  # nothing before the identity check

    sign_in(client, portal)
    home = client.get(portal.path)

    assert phrases["home"] in home.text
    assert all(inv.number in home.text for inv in portal.invoices)
    assert home.headers["referrer-policy"] == "no-referrer"
    assert home.headers["cache-control"] == "no-store"
    assert "script-src" not in home.headers["content-security-policy"]  # no script at all


def test_language_switch_link_changes_the_page(client, db, portal):
    sign_in(client, portal)
    english = client.get(f"{portal.path}?lang=en")
    assert '<html lang="en">' in english.text and "Your account" in english.text
    again = client.get(portal.path)  # remembered by the session
    assert '<html lang="en">' in again.text


def test_b2b_overview_shows_interest_and_the_40_euro_indemnity(client, db):
    portal = make_portal(db, language="en", segment="b2b", amounts=(100000,), days_late=30)
    sign_in(client, portal)
    home = client.get(portal.path).text
    assert "Fixed indemnity" in home and "€40.00" in home
    assert "Late interest" in home


@pytest.mark.parametrize("currency", ["USD", "GBP"])
def test_b2b_overview_of_a_bill_in_another_currency_shows_interest_and_no_indemnity(
    client, db, currency
):
    """The D441-5 indemnity is 40 euros, owed here on invoices in euros only: a business's
    page for a bill in dollars or pounds shows the interest, never "40" of that currency."""
    portal = make_portal(db, language="en", segment="b2b", amounts=(100000,), days_late=30)
    for invoice in portal.invoices:
        invoice.currency = currency
    db.flush()
    sign_in(client, portal)
    home = client.get(portal.path).text
    assert "Late interest" in home
    assert "Fixed indemnity" not in home and "€40" not in home
    assert "$40" not in home and "£40" not in home and "recovery indemnity" not in home


def test_wrong_answers_lock_the_link(client, db, portal):
    page = client.get(portal.path)
    csrf = csrf_of(page.text)
    limit = get_settings().identity_max_attempts
    statuses = [
        client.post(
            f"{portal.path}/identity", data={"answer": f"9900{i}", "csrf_token": csrf}
        ).status_code
        for i in range(limit)
    ]
    # Locked now: even the right answer is refused, and no debt detail is shown.
    right = client.post(f"{portal.path}/identity", data={"answer": POSTCODE, "csrf_token": csrf})

    assert statuses[:-1] == [401] * (limit - 1) and statuses[-1] == 429
    first = client.get(portal.path)  # locked: the form is gone
    assert "Essais restants" not in html.unescape(first.text)
    assert right.status_code == 429
    assert portal.invoices[0].number not in right.text
    assert client.get(portal.path).status_code == 429


def test_a_wrong_answer_says_how_many_attempts_are_left(client, db, portal):
    csrf = csrf_of(client.get(portal.path).text)
    wrong = client.post(f"{portal.path}/identity", data={"answer": "99999", "csrf_token": csrf})
    left = get_settings().identity_max_attempts - 1
    assert wrong.status_code == 401
    assert f"Essais restants avant blocage\u00a0: {left}." in html.unescape(wrong.text)


def test_one_message_with_many_candidates_counts_each(client, db, portal):
    csrf = csrf_of(client.get(portal.path).text)
    guesses = ", ".join(f"7500{i}" for i in range(1, 5))  # four answers in one message
    response = client.post(f"{portal.path}/identity", data={"answer": guesses, "csrf_token": csrf})
    assert response.status_code == 429


# --- links ----------------------------------------------------------------------------------


def test_unknown_guessed_expired_and_revoked_links_are_clear_4xx(client, db, portal):
    sign_in(client, portal)
    guessed = client.get("/portal/" + "A" * 43)
    too_long = client.get("/portal/" + "A" * 500)
    assert guessed.status_code == 404 and too_long.status_code == 404
    assert "Ce lien n'est pas valable" in html.unescape(guessed.text)

    revoke(db, _access(db, portal), actor="test")
    db.flush()
    revoked = client.get(portal.path)
    assert revoked.status_code == 410 and portal.invoices[0].number not in revoked.text

    other = make_portal(db)
    access = _access(db, other)
    access.expires_at = utcnow() - timedelta(seconds=1)
    db.flush()
    expired = client.get(f"{other.path}?lang=en")
    assert expired.status_code == 410 and "This link has expired" in expired.text


def _access(db, portal: Portal):
    from relance.portal.access import find_access

    found = find_access(db, portal.token)
    assert found is not None
    return found


def test_token_of_debtor_a_never_shows_debtor_b(client, db):
    a, b = make_portal(db), make_portal(db)
    sign_in(client, a)

    # B's letter, file or invoice through A's link: not found / not payable.
    csrf = csrf_of(client.get(a.path).text)
    pay_b = client.post(
        f"{a.path}/pay", data={"invoice_ids": [str(b.invoices[0].id)], "csrf_token": csrf}
    )
    assert pay_b.status_code == 400
    dispute_b = client.post(
        f"{a.path}/dispute",
        data={"invoice_id": str(b.invoices[0].id), "reason": "other", "csrf_token": csrf},
    )
    assert dispute_b.status_code == 400
    assert db.scalars(select(Dispute).where(Dispute.debtor_id == b.debtor.id)).first() is None
    # A's verified session on B's link: the identity form, never B's invoices.
    on_b = client.get(b.path)
    assert on_b.status_code == 200 and f"{b.path}/identity" in on_b.text
    assert not any(inv.number in on_b.text for inv in b.invoices)


def test_csrf_missing_or_wrong_is_403_and_changes_nothing(client, db, portal):
    sign_in(client, portal)
    tomorrow = (date.today() + timedelta(days=3)).isoformat()
    missing = client.post(f"{portal.path}/promise", data={"promised_date": tomorrow})
    wrong = client.post(
        f"{portal.path}/promise", data={"promised_date": tomorrow, "csrf_token": "forged"}
    )
    assert missing.status_code == 403 and wrong.status_code == 403
    assert db.scalars(select(Promise).where(Promise.debtor_id == portal.debtor.id)).first() is None


def test_identity_post_without_csrf_is_403(client, db, portal):
    client.get(portal.path)
    response = client.post(f"{portal.path}/identity", data={"answer": POSTCODE})
    assert response.status_code == 403


# --- sign-in without a link: no enumeration --------------------------------------------------


def _sign_in_post(client, customer_number, answer):
    csrf = csrf_of(client.get("/portal").text)
    return client.post(
        "/portal",
        data={"customer_number": customer_number, "answer": answer, "csrf_token": csrf},
        follow_redirects=False,
    )


def test_sign_in_same_answer_for_unknown_number_and_wrong_postcode(client, db, portal):
    unknown = _sign_in_post(client, "C-99999999", "12345")
    wrong = _sign_in_post(client, portal.debtor.customer_number, "12345")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.text == wrong.text


def test_sign_in_works_then_locks_per_number(client, db, portal):
    ok = _sign_in_post(client, portal.debtor.customer_number, POSTCODE)
    assert ok.status_code == 303 and ok.headers["location"].startswith("/portal/")
    assert portal.invoices[0].number in client.get(ok.headers["location"]).text

    other = make_portal(db)
    for _ in range(get_settings().identity_max_attempts):
        _sign_in_post(client, other.debtor.customer_number, "00000")
    locked = _sign_in_post(client, other.debtor.customer_number, POSTCODE)
    unknown_locked = _sign_in_post(client, "C-424242", POSTCODE)
    assert locked.status_code == 401 and unknown_locked.status_code == 401


def _half_an_hour_later(db):
    """Every lock runs out (link and sign-in): what a patient guesser waits for."""
    _earlier(db, timedelta(minutes=31))
    db.execute(update(PortalAccess).values(locked_until=utcnow() - timedelta(seconds=1)))
    db.flush()


def _earlier(db, delta):
    for event in db.scalars(select(AuditEvent)):
        event.at -= delta
    db.flush()


def test_guesses_spread_over_sign_in_and_link_locks_run_into_one_daily_limit(client, db, portal):
    """Each lock ended with a fresh count: 3 guesses at sign-in and 3 on the link every half
    hour, all day long. Now every wrong answer about the debtor counts towards one daily limit,
    after which even the right postcode opens nothing, on either path."""
    limit = get_settings().identity_max_attempts
    guesses = iter(f"{n:05d}" for n in range(10000, 20000))
    for _ in range(2):  # two half-hours: 12 guesses where the daily limit is 9
        for _ in range(limit):
            assert (
                _sign_in_post(client, portal.debtor.customer_number, next(guesses)).status_code
                == 401
            )
        csrf = csrf_of(client.get(portal.path).text)
        for _ in range(limit):
            wrong = client.post(
                f"{portal.path}/identity", data={"answer": next(guesses), "csrf_token": csrf}
            )
            assert wrong.status_code in (401, 429)
        _half_an_hour_later(db)

    by_sign_in = _sign_in_post(client, portal.debtor.customer_number, POSTCODE)
    csrf = csrf_of(client.get(portal.path).text)
    by_link = client.post(f"{portal.path}/identity", data={"answer": POSTCODE, "csrf_token": csrf})
    assert by_sign_in.status_code == 401
    assert by_link.status_code == 429 and portal.invoices[0].number not in by_link.text
    assert client.get(portal.path).status_code == 429

    _earlier(db, timedelta(hours=24))
    assert _sign_in_post(client, portal.debtor.customer_number, POSTCODE).status_code == 303


# --- actions --------------------------------------------------------------------------------


@LANGS
def test_pay_all_and_selected_open_payment_links(client, db, sandbox_payments, language, phrases):
    portal = make_portal(db, language=language)
    csrf = sign_in(client, portal)
    selected = client.post(
        f"{portal.path}/pay",
        data={"invoice_ids": [str(portal.invoices[1].id)], "csrf_token": csrf},
        follow_redirects=False,
    )
    assert selected.status_code == 303 and "/pay/" in selected.headers["location"]
    link = db.scalars(select(PaymentLink).where(PaymentLink.debtor_id == portal.debtor.id)).one()
    assert link.invoice_ids == [portal.invoices[1].id] and link.amount_minor == 30000
    assert _timeline(db, portal, "payment_started")

    nothing = client.post(f"{portal.path}/pay", data={"csrf_token": csrf})
    assert nothing.status_code == 400
    assert ("Cochez au moins" if language == "fr" else "Tick at least one") in nothing.text


def _pay_all_form(page: str, portal: Portal) -> dict[str, list[str]]:
    """The fields of the overview's "pay all" form (the first form posting to /pay), as a
    browser would send them."""
    start = page.index(f'action="{portal.path}/pay"')
    form = page[start : page.index("</form>", start)]
    fields: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form):
        fields.setdefault(name, []).append(html.unescape(value))
    return fields


@LANGS
def test_pay_all_posts_every_open_invoice(client, db, sandbox_payments, language, phrases):
    """The "pay all" button, posted as the page renders it, opens one link for every open
    invoice: a partly paid one for what is left, not a paid, cancelled or disputed one."""
    portal = make_portal(db, language=language, amounts=(12000, 30000, 8000))
    partly = portal.invoices[2]
    partly.paid_minor = 3000
    paid = make_invoice(db, portal.debtor, 5000, status=InvoiceStatus.PAID, paid_minor=5000)
    disputed = make_invoice(db, portal.debtor, 7000, status=InvoiceStatus.DISPUTED)
    db.flush()
    csrf = sign_in(client, portal)
    page = client.get(portal.path).text
    fields = _pay_all_form(page, portal)
    assert fields["csrf_token"] == [csrf] and fields["scope"] == ["all"]
    button = "Tout payer (" if language == "fr" else "Pay everything ("
    assert button in html.unescape(page)

    answer = client.post(f"{portal.path}/pay", data=fields, follow_redirects=False)

    assert answer.status_code == 303 and "/pay/" in answer.headers["location"]
    link = db.scalars(select(PaymentLink).where(PaymentLink.debtor_id == portal.debtor.id)).one()
    open_ids = sorted(invoice.id for invoice in portal.invoices)
    assert sorted(link.invoice_ids) == open_ids
    assert paid.id not in link.invoice_ids and disputed.id not in link.invoice_ids
    assert link.amount_minor == 12000 + 30000 + 5000 and link.currency == "EUR"
    assert _timeline(db, portal, "payment_started")


def test_pay_all_covers_a_debtor_with_many_open_invoices(client, db, sandbox_payments):
    """A business debtor can have dozens of open invoices: "pay all" still covers them all."""
    portal = make_portal(db, language="en", segment="b2b", amounts=(1000,) * 30)
    csrf = sign_in(client, portal)
    fields = _pay_all_form(client.get(portal.path).text, portal)
    assert fields["csrf_token"] == [csrf]

    answer = client.post(f"{portal.path}/pay", data=fields, follow_redirects=False)

    assert answer.status_code == 303, answer.text
    link = db.scalars(select(PaymentLink).where(PaymentLink.debtor_id == portal.debtor.id)).one()
    assert sorted(link.invoice_ids) == sorted(invoice.id for invoice in portal.invoices)
    assert link.amount_minor == 30 * 1000
    # ticking them all on the list works too
    ticked = [str(invoice.id) for invoice in portal.invoices]
    again = client.post(
        f"{portal.path}/pay",
        data={"invoice_ids": ticked, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert again.status_code == 303, again.text


@LANGS
def test_invoices_in_two_currencies_are_refused_in_the_debtors_language(
    client, db, sandbox_payments, language, phrases
):
    """create_link's PolicyViolation("mixed_currencies") reaches the portal page unwrapped."""
    portal = make_portal(db, language=language)
    portal.invoices[1].currency = "USD"
    db.flush()
    csrf = sign_in(client, portal)
    chosen = [str(invoice.id) for invoice in portal.invoices]

    mixed = client.post(f"{portal.path}/pay", data={"invoice_ids": chosen, "csrf_token": csrf})

    assert mixed.status_code == 422
    expected = "devises différentes" if language == "fr" else "different currencies"
    assert expected in html.unescape(mixed.text)
    assert (
        db.scalars(select(PaymentLink).where(PaymentLink.debtor_id == portal.debtor.id)).all() == []
    )
    assert not _timeline(db, portal, "payment_started")


@LANGS
def test_choose_a_plan_option(client, db, language, phrases):
    portal = make_portal(db, language=language)
    csrf = sign_in(client, portal)
    page = client.get(f"{portal.path}/plan")
    assert page.status_code == 200 and 'action="' + portal.path + '/plan/accept"' in page.text

    response = client.post(
        f"{portal.path}/plan/accept",
        data={"installments": "3", "frequency": "monthly", "csrf_token": csrf},
    )

    assert response.status_code == 200 and phrases["done_plan"] in response.text
    plan = db.scalars(select(PaymentPlan).where(PaymentPlan.debtor_id == portal.debtor.id)).one()
    assert plan.status == PlanStatus.ACTIVE and plan.installments_count == 3
    assert _timeline(db, portal, "plan_created")
    # The plan, with its first instalment to pay, comes before the other possibilities, which
    # no longer offer a second plan (it would be refused): the plan page says one is in place.
    page = response.text
    assert page.index("/installments/") < page.index('id="other-h"')
    assert f'href="{portal.path}/plan"' not in page
    in_place = client.get(f"{portal.path}/plan").text
    assert html.unescape(translate(language, "plan_in_place")) in html.unescape(in_place)
    assert "/plan/accept" not in in_place and "/plan/evaluate" not in in_place


EVEN = {"fr": ("par échéance", "puis"), "en": ("per instalment", "then")}


@LANGS
def test_a_plan_of_equal_instalments_reads_as_one_amount_each(client, db, language, phrases):
    """300 € in 3 equal instalments: "100 € per instalment", not "100 € then 100 €"."""
    portal = make_portal(db, language=language, amounts=(30_000,))
    sign_in(client, portal)
    page = html.unescape(client.get(f"{portal.path}/plan").text)
    each, uneven = EVEN[language]
    assert f"{money(10_000, 'EUR', language)} {each}" in page
    assert f" {uneven} " not in page


ACCEPT_FORM = re.compile(r'action="[^"]*/plan/accept">(.*?)</form>', re.S)


@LANGS
def test_a_counter_offer_raising_the_first_payment_can_be_accepted(client, db, language, phrases):
    """6,000 EUR in 12 monthly instalments: the policy wants 20 % first, so the counter-offer is
    1,200 EUR then 436.36 EUR; its button creates that plan, as the assistant's yes does (an
    even split of 12 would need a collector and was refused, 422)."""
    portal = make_portal(db, language=language, amounts=(600_000,))
    csrf = sign_in(client, portal)
    evaluated = client.post(
        f"{portal.path}/plan/evaluate",
        data={"installments": "12", "frequency": "monthly", "csrf_token": csrf},
    )
    form = ACCEPT_FORM.search(evaluated.text)
    assert evaluated.status_code == 200 and form is not None
    fields = dict(re.findall(r'name="(\w+)" value="([^"]*)"', form.group(1)))
    assert fields["first_amount"] == "120000" and fields["installments"] == "12"

    forged = client.post(f"{portal.path}/plan/accept", data={**fields, "first_amount": "600000"})
    assert forged.status_code == 400
    assert html.unescape(translate(language, "error_bad_first_amount")) in html.unescape(
        forged.text
    )
    assert (
        db.scalars(select(PaymentPlan).where(PaymentPlan.debtor_id == portal.debtor.id)).all() == []
    )

    accepted = client.post(f"{portal.path}/plan/accept", data=fields)

    assert accepted.status_code == 200 and phrases["done_plan"] in accepted.text
    plan = db.scalars(select(PaymentPlan).where(PaymentPlan.debtor_id == portal.debtor.id)).one()
    amounts = [i.amount_minor for i in plan.installments]
    assert plan.status == PlanStatus.ACTIVE and amounts == [120_000, 43_640] + [43_636] * 10


@LANGS
def test_plan_outside_limits_counter_offer_then_approval(client, db, language, phrases):
    portal = make_portal(db, language=language)
    csrf = sign_in(client, portal)
    evaluated = client.post(
        f"{portal.path}/plan/evaluate",
        data={"installments": "48", "frequency": "weekly", "csrf_token": csrf},
    )
    assert evaluated.status_code == 200
    assert f"{portal.path}/plan/approval" in evaluated.text

    refused = client.post(
        f"{portal.path}/plan/accept",
        data={"installments": "48", "frequency": "weekly", "csrf_token": csrf},
    )
    assert refused.status_code == 422  # not what the assistant may agree alone

    asked = client.post(
        f"{portal.path}/plan/approval",
        data={"installments": "48", "frequency": "weekly", "csrf_token": csrf},
    )
    assert asked.status_code == 200
    plan = db.scalars(select(PaymentPlan).where(PaymentPlan.debtor_id == portal.debtor.id)).one()
    assert plan.status == PlanStatus.PENDING_APPROVAL
    assert db.scalars(select(Task).where(Task.debtor_id == portal.debtor.id)).first() is not None
    assert db.scalars(select(Handoff)).first() is not None
    assert _timeline(db, portal, "plan_approval_requested")


@LANGS
def test_promise_to_pay(client, db, language, phrases):
    portal = make_portal(db, language=language)
    csrf = sign_in(client, portal)
    assert client.get(f"{portal.path}/promise").status_code == 200
    when = date.today() + timedelta(days=5)
    response = client.post(
        f"{portal.path}/promise",
        data={"promised_date": when.isoformat(), "amount": "100,50", "csrf_token": csrf},
    )
    assert response.status_code == 200
    promise = db.scalars(select(Promise).where(Promise.debtor_id == portal.debtor.id)).one()
    assert promise.amount_minor == 10050 and promise.promised_date == when
    assert promise.source == "portal"
    assert _timeline(db, portal, "promise_recorded")

    too_late = client.post(
        f"{portal.path}/promise",
        data={"promised_date": (date.today() + timedelta(days=90)).isoformat(), "csrf_token": csrf},
    )
    assert too_late.status_code == 422


@LANGS
def test_dispute_with_attachment_pauses_the_invoice(client, db, settings, language, phrases):
    portal = make_portal(db, language=language)
    csrf = sign_in(client, portal)
    assert client.get(f"{portal.path}/dispute").status_code == 200
    invoice = portal.invoices[0]
    response = client.post(
        f"{portal.path}/dispute",
        data={
            "invoice_id": str(invoice.id),
            "reason": "wrong_amount",
            "details": "Billed twice",
            "csrf_token": csrf,
        },
        files=[("files", ("proof.pdf", PDF, "application/pdf"))],
    )
    assert response.status_code == 200
    db.refresh(invoice)
    assert invoice.status == InvoiceStatus.DISPUTED
    dispute = db.scalars(select(Dispute).where(Dispute.debtor_id == portal.debtor.id)).one()
    stored = db.scalars(select(PortalAttachment)).one()
    path = settings.var_dir / "portal_files" / stored.stored_name
    assert path.read_bytes() == PDF and (path.stat().st_mode & 0o077) == 0
    assert dispute.reference in response.text
    assert _timeline(db, portal, "dispute_created")
    download = client.get(f"{portal.path}/attachments/{stored.id}")
    assert download.status_code == 200 and download.content == PDF


@pytest.mark.parametrize(
    ("name", "data", "status"),
    [
        ("notes.exe", b"MZ\x90\x00binary", 400),
        ("fake.pdf", b"<html>not a pdf</html>", 400),
        ("big.pdf", b"%PDF-" + b"0" * (5 * 1024 * 1024), 400),
    ],
)
def test_bad_attachment_is_4xx_and_nothing_stored(client, db, settings, portal, name, data, status):
    csrf = sign_in(client, portal)
    response = client.post(
        f"{portal.path}/dispute",
        data={"invoice_id": str(portal.invoices[0].id), "reason": "other", "csrf_token": csrf},
        files=[("files", (name, data, "application/pdf"))],
    )
    assert response.status_code == status
    assert db.scalars(select(Dispute).where(Dispute.debtor_id == portal.debtor.id)).first() is None
    assert db.scalars(select(PortalAttachment)).first() is None
    folder = settings.var_dir / "portal_files"
    assert not folder.exists() or not any(folder.iterdir())


def _field(page: str, field_id: str) -> str:
    """The opening tag of the form control with this id."""
    found = re.search(rf"<(?:input|select|textarea)[^>]*\bid=\"{field_id}\"[^>]*>", page)
    assert found, f"no #{field_id} on the page"
    return found.group(0)


@LANGS
def test_a_refused_file_brings_the_dispute_form_back_with_what_was_typed(
    client, db, settings, language, phrases
):
    """Not a dead-end page: the form again, the file named in the error, the error tied to
    the file field (which takes the focus), the invoice, reason and details kept."""
    portal = make_portal(db, language=language)
    csrf = sign_in(client, portal)
    invoice = portal.invoices[1]
    response = client.post(
        f"{portal.path}/dispute",
        data={
            "invoice_id": str(invoice.id),
            "reason": "wrong_amount",
            "details": "Billed <twice>",
            "csrf_token": csrf,
        },
        files=[("files", ("../../photo.heic", b"\x00\x00\x00\x18ftypheic", "image/heic"))],
    )
    assert response.status_code == 400
    page = html.unescape(response.text)
    alert = re.search(r'<p class="error" role="alert" id="form-error">([^<]*)</p>', page)
    assert alert and "photo.heic" in alert.group(1) and "../" not in alert.group(1)
    files = _field(page, "files")
    assert 'aria-invalid="true"' in files and "autofocus" in files
    assert 'aria-describedby="files-hint form-error"' in files
    assert "Billed <twice>" in page and "Billed <twice>" not in response.text  # escaped
    assert 'id="reason-wrong_amount" name="reason" value="wrong_amount" required checked' in page
    assert f'<option value="{invoice.id}" selected>' in page
    assert db.scalars(select(Dispute).where(Dispute.debtor_id == portal.debtor.id)).first() is None
    assert not _timeline(db, portal, "dispute_created")


@LANGS
def test_a_refused_promise_brings_the_form_back_with_what_was_typed(client, db, language, phrases):
    portal = make_portal(db, language=language)
    csrf = sign_in(client, portal)
    late = (date.today() + timedelta(days=90)).isoformat()
    response = client.post(
        f"{portal.path}/promise",
        data={"promised_date": late, "amount": "80", "csrf_token": csrf},
    )
    assert response.status_code == 422
    page = html.unescape(response.text)
    when = _field(page, "promised_date")
    assert f'value="{late}"' in when and 'aria-invalid="true"' in when
    assert 'value="80"' in _field(page, "amount")
    assert "aria-invalid" not in _field(page, "amount")
    assert db.scalars(select(Promise).where(Promise.debtor_id == portal.debtor.id)).first() is None

    bad_amount = client.post(
        f"{portal.path}/promise",
        data={
            "promised_date": (date.today() + timedelta(days=3)).isoformat(),
            "amount": "dix euros",
            "csrf_token": csrf,
        },
    )
    assert bad_amount.status_code == 400
    amount = _field(html.unescape(bad_amount.text), "amount")
    assert 'value="dix euros"' in amount and 'aria-invalid="true"' in amount


def test_oversized_body_is_413(client, db, portal):
    csrf = sign_in(client, portal)
    response = client.post(
        f"{portal.path}/dispute",
        data={"invoice_id": str(portal.invoices[0].id), "reason": "other", "csrf_token": csrf},
        files=[("files", ("huge.pdf", b"%PDF-" + b"0" * (16 * 1024 * 1024), "application/pdf"))],
    )
    assert response.status_code == 413
    assert db.scalars(select(Dispute).where(Dispute.debtor_id == portal.debtor.id)).first() is None
    # A page in the debtor's language (not the API's JSON), back to the form.
    assert response.headers["content-type"].startswith("text/html")
    page = html.unescape(response.text)
    assert translate("fr", "error_request_too_large") in page
    assert f'href="{portal.path}/dispute"' in page


def test_oversized_dispute_page_speaks_the_debtors_language(client, db):
    portal = make_portal(db, language="en")
    csrf = sign_in(client, portal)
    response = client.post(
        f"{portal.path}/dispute",
        data={"invoice_id": str(portal.invoices[0].id), "reason": "other", "csrf_token": csrf},
        files=[("files", ("huge.pdf", b"%PDF-" + b"0" * (16 * 1024 * 1024), "application/pdf"))],
    )
    assert response.status_code == 413
    assert translate("en", "error_request_too_large") in html.unescape(response.text)
    assert response.headers["content-security-policy"].startswith("default-src 'none'")


@LANGS
def test_preferences(client, db, language, phrases):
    portal = make_portal(db, language=language)
    csrf = sign_in(client, portal)
    assert client.get(f"{portal.path}/preferences").status_code == 200
    response = client.post(
        f"{portal.path}/preferences",
        data={
            "channel": "sms",
            "language": "en",
            "contact_from": "17:00",
            "contact_until": "19:30",
            "csrf_token": csrf,
        },
    )
    assert response.status_code == 200 and "Your preferences are saved" in response.text
    db.refresh(portal.debtor)
    assert portal.debtor.preferred_channel == "sms" and portal.debtor.language == "en"
    assert portal.debtor.contact_from is not None and portal.debtor.contact_from.hour == 17
    assert _timeline(db, portal, "preferences_set")

    night = client.post(
        f"{portal.path}/preferences",
        data={
            "language": "en",
            "contact_from": "21:00",
            "contact_until": "23:00",
            "csrf_token": csrf,
        },
    )
    assert night.status_code == 400 and "outside the hours" in night.text
    # The form again with the hours typed, the error on them; nothing changed.
    page = html.unescape(night.text)
    start = _field(page, "contact_from")
    assert 'value="21:00"' in start and 'aria-invalid="true"' in start
    assert 'value="23:00"' in _field(page, "contact_until")
    db.refresh(portal.debtor)
    assert portal.debtor.contact_from.hour == 17
    assert len(_timeline(db, portal, "preferences_set")) == 1


def test_letter_pdf_only_for_its_debtor(client, db, settings, portal):
    from relance.db.models import Letter

    other = make_portal(db)
    pdf = settings.var_dir / "letter.pdf"
    pdf.parent.mkdir(parents=True, exist_ok=True)
    pdf.write_bytes(PDF)
    letters = [
        Letter(
            debtor_id=owner.debtor.id,
            language="fr",
            principal_minor=100,
            currency="EUR",
            deadline=date.today(),
            pdf_path=str(pdf),
        )
        for owner in (portal, other)
    ]
    db.add_all(letters)
    db.flush()
    sign_in(client, portal)
    home = client.get(portal.path).text
    assert f"/letters/{letters[0].id}.pdf" in home
    own = client.get(f"{portal.path}/letters/{letters[0].id}.pdf")
    foreign = client.get(f"{portal.path}/letters/{letters[1].id}.pdf")
    assert own.status_code == 200 and own.content == PDF
    assert foreign.status_code == 404


@pytest.mark.parametrize("chosen", [None, "fr"])
def test_an_unreadable_form_is_answered_in_the_debtors_language(client, db, chosen):
    """The form's fields are checked before the route runs, so the page cannot take the language
    the route finds: it is found from the request (the language chosen, else the debtor's)."""
    portal = make_portal(db, language="en")
    csrf = sign_in(client, portal)
    if chosen:
        client.get(f"{portal.path}?lang={chosen}")
    response = client.post(
        f"{portal.path}/plan/evaluate",
        data={"installments": "1", "frequency": "monthly", "csrf_token": csrf},
    )
    assert response.status_code == 422
    language = chosen or "en"
    assert html.unescape(translate(language, "error_bad_form")) in html.unescape(response.text)
    assert f'<html lang="{language}">' in response.text
    assert f'href="{portal.path}"' in response.text  # back to the account


def test_actions_need_the_identity_check(client, db, portal):
    page = client.get(portal.path)  # a session cookie, but not verified
    csrf = csrf_of(page.text)
    response = client.post(
        f"{portal.path}/promise",
        data={"promised_date": date.today().isoformat(), "csrf_token": csrf},
    )
    assert response.status_code == 401 and "/identity" in response.text
    assert db.scalars(select(Promise)).first() is None
    assert (
        db.scalars(select(AuditEvent).where(AuditEvent.action == "promise.recorded")).first()
        is None
    )
