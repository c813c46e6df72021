"""Every portal action end to end in headless Chromium on a phone-sized screen, in French and in
English: pay everything or the ticked invoices through the sandbox checkout until the payment is
recorded, choose a plan, ask for another one (counter-offer, then a collector's approval),
promise a date, dispute an invoice with an attachment (and a refused file), set the contact
preferences. Each test reads the database afterwards: the payment, plan, promise, dispute or
preferences stored and the line in the debtor's timeline, not only the page's text. axe-core
runs on every page reached on the way (screenshots in $RELANCE_SCREENSHOTS)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.browser.portal_support import (
    PHONE,
    POSTCODE,
    axe,
    new_account,
    payer_t,
    said,
    t,
    text,
    timeline,
    verify,
    words,
)

pytestmark = pytest.mark.browser

LANGUAGES = pytest.mark.parametrize("language", ["fr", "en"])


@pytest.fixture(scope="module")
def payments(live_server: dict[str, Any]) -> Iterator[None]:
    """The sandbox provider behind the core's payments port, as `make run` has it."""
    from payment_links.providers.sandbox import SandboxProvider
    from payment_links.wiring import PaymentLinksAdapter
    from relance.ledger import ports
    from relance.settings import get_settings

    previous = ports._payments
    ports.install_payments(PaymentLinksAdapter(SandboxProvider(get_settings())))
    yield
    ports._payments = previous


@pytest.fixture
def phone(browser: Any, live_server: dict[str, Any], payments: None) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def _money(amount_minor: int, language: str) -> str:
    from relance.nlg.formatting import money

    return words(money(amount_minor, "EUR", language))


def _rows(live_server: dict[str, Any], model: Any, debtor_id: int) -> list[Any]:
    with live_server["factory"]() as session:
        return list(
            session.scalars(select(model).where(model.debtor_id == debtor_id).order_by(model.id))
        )


def _invoice_statuses(live_server: dict[str, Any], ids: list[int]) -> list[str]:
    from relance.db.models import Invoice

    with live_server["factory"]() as session:
        return [session.get(Invoice, i).status for i in ids]


# --- paying --------------------------------------------------------------------------------


@LANGUAGES
def test_pay_everything_through_the_sandbox_checkout_records_the_payment(
    phone: Any, live_server: dict[str, Any], screens_dir: Path, language: str
) -> None:
    from relance.db.models import Payment

    base = live_server["url"]
    account = new_account(live_server, language)
    verify(phone, base, account.path)
    total = _money(48_000 + 12_990, language)
    phone.get_by_role("button", name=t(language, "pay_all", amount=total)).click()

    phone.wait_for_url("**/pay/*")
    assert phone.evaluate("document.documentElement.lang") == language
    assert total in text(phone)
    back = phone.get_by_role("link", name=payer_t(language, "back_to_account"))
    assert back.get_attribute("href") == account.path
    axe(phone, f"pay-{language}-payer-page", screens_dir)
    phone.get_by_role("button", name=payer_t(language, "pay_button", amount=total)).click()

    phone.wait_for_url("**/pay/sandbox/*")
    axe(phone, f"pay-{language}-sandbox-checkout", screens_dir)
    success = phone.input_value("input[name=success]")
    phone.get_by_role("button", name=payer_t(language, "sandbox_pay")).click()

    # Paid: the checkout's success URL, which brings the debtor back to the portal's page.
    phone.wait_for_url(f"**{account.path}?done=paid&link=*")
    assert said(phone, "status") == t(language, "done_paid", amount=total)
    assert t(language, "nothing_to_pay") in text(phone)
    axe(phone, f"pay-{language}-back-on-the-portal", screens_dir)

    # The same success URL reached from elsewhere (as from Stripe's site): thanks and a link,
    # which keeps the portal's session (a click on our page sends its SameSite=Strict cookie).
    phone.goto(success)
    assert payer_t(language, "received_title") in text(phone)
    axe(phone, f"pay-{language}-received-from-elsewhere", screens_dir)
    phone.get_by_role("link", name=payer_t(language, "back_to_account")).click()
    phone.wait_for_url(f"**{account.path}?done=paid&link=*")
    assert said(phone, "status") == t(language, "done_paid", amount=total)
    (payment,) = _rows(live_server, Payment, account.debtor_id)
    assert (payment.amount_minor, payment.currency, payment.provider) == (60_990, "EUR", "sandbox")
    assert _invoice_statuses(live_server, account.invoice_ids) == ["paid", "paid"]
    assert [kind for kind, _ in timeline(live_server, account.debtor_id)] == ["payment_started"]


@LANGUAGES
def test_pay_the_ticked_invoice_after_a_declined_card(
    phone: Any, live_server: dict[str, Any], screens_dir: Path, language: str
) -> None:
    from relance.db.models import Payment

    base = live_server["url"]
    account = new_account(live_server, language)
    first, second = account.invoice_ids
    verify(phone, base, account.path)
    phone.check(f"#inv-{second}")
    phone.get_by_role("button", name=t(language, "pay_selected")).click()

    phone.wait_for_url("**/pay/*")
    amount = _money(12_990, language)
    phone.get_by_role("button", name=payer_t(language, "pay_button", amount=amount)).click()
    phone.wait_for_url("**/pay/sandbox/*")
    phone.get_by_role("button", name=payer_t(language, "sandbox_decline")).click()
    phone.wait_for_url("**&declined=card_declined")
    assert said(phone) == payer_t(language, "sandbox_declined")
    axe(phone, f"pay-{language}-sandbox-declined", screens_dir)
    assert _rows(live_server, Payment, account.debtor_id) == []

    # Cancelled: back on the payer page, which still leads back to the account.
    phone.get_by_role("link", name=payer_t(language, "sandbox_cancel")).click()
    phone.wait_for_url(re.compile(r"/pay/[^/]+\?checkout=cancelled&return="))
    assert said(phone, "status") == payer_t(language, "cancelled")
    axe(phone, f"pay-{language}-cancelled-from-the-portal", screens_dir)
    phone.get_by_role("link", name=payer_t(language, "back_to_account")).click()
    phone.wait_for_url(f"**{account.path}")
    assert phone.locator(f"#inv-{second}").is_visible()

    phone.check(f"#inv-{second}")
    phone.get_by_role("button", name=t(language, "pay_selected")).click()
    phone.get_by_role("button", name=payer_t(language, "pay_button", amount=amount)).click()
    phone.wait_for_url("**/pay/sandbox/*")
    phone.get_by_role("button", name=payer_t(language, "sandbox_pay")).click()
    phone.wait_for_url(f"**{account.path}?done=paid&link=*")
    assert said(phone, "status") == t(language, "done_paid", amount=amount)
    (payment,) = _rows(live_server, Payment, account.debtor_id)
    assert payment.amount_minor == 12_990
    assert _invoice_statuses(live_server, [first, second]) == ["open", "paid"]
    assert phone.locator(f"#inv-{second}").count() == 0
    assert phone.locator(f"#inv-{first}").is_visible()


# --- plans ---------------------------------------------------------------------------------


def _plans(live_server: dict[str, Any], debtor_id: int) -> list[tuple[str, int, str]]:
    from relance.db.models import PaymentPlan

    return [
        (p.status, p.installments_count, p.frequency)
        for p in _rows(live_server, PaymentPlan, debtor_id)
    ]


@LANGUAGES
def test_choose_an_offered_plan(
    phone: Any, live_server: dict[str, Any], screens_dir: Path, language: str
) -> None:
    base = live_server["url"]
    account = new_account(live_server, language)
    verify(phone, base, account.path)
    phone.get_by_role("link", name=t(language, "action_plan")).click()
    phone.wait_for_url("**/plan")
    first = phone.locator("form[action$='/plan/accept']").first
    count = int(first.locator("input[name=installments]").input_value())
    frequency = first.locator("input[name=frequency]").input_value()
    first.get_by_role("button").click()

    phone.wait_for_url("**?done=plan")
    assert t(language, "done_plan") in text(phone)
    axe(phone, f"plan-{language}-chosen", screens_dir)
    assert _plans(live_server, account.debtor_id) == [("active", count, frequency)]
    ((kind, body),) = timeline(live_server, account.debtor_id)
    assert kind == "plan_created" and f"{count} {frequency} instalments" in body

    # No second plan is offered; the plan page says why.
    assert phone.get_by_role("link", name=t(language, "action_plan")).count() == 0
    phone.goto(f"{base}{account.path}/plan")
    assert t(language, "plan_in_place") in text(phone)
    axe(phone, f"plan-{language}-in-place", screens_dir)


@LANGUAGES
def test_ask_for_another_plan_counter_offer_then_a_collectors_approval(
    phone: Any, live_server: dict[str, Any], screens_dir: Path, language: str
) -> None:
    from relance.db.models import Conversation, Handoff

    base = live_server["url"]
    account = new_account(live_server, language)
    verify(phone, base, account.path)
    phone.goto(f"{base}{account.path}/plan")
    phone.fill("#installments", "2")
    phone.get_by_role("button", name=t(language, "check_plan")).click()
    assert t(language, "plan_fits") in text(phone)  # two monthly instalments: agreed at once
    axe(phone, f"plan-{language}-fits", screens_dir)
    phone.fill("#installments", "40")
    phone.select_option("#frequency", "weekly")
    phone.get_by_role("button", name=t(language, "check_plan")).click()

    main = text(phone)
    asked = t(language, "plan_you_asked", count=40, frequency=t(language, "freq_weekly"))
    assert asked in main and t(language, "plan_counter") in main
    axe(phone, f"plan-{language}-counter-offer", screens_dir)
    assert _plans(live_server, account.debtor_id) == []  # looking at an offer changes nothing

    phone.get_by_role("button", name=t(language, "ask_collector")).click()
    phone.wait_for_url("**?done=approval")
    assert t(language, "done_approval") in text(phone)
    assert t(language, "plan_status_pending_approval") in text(phone)
    axe(phone, f"plan-{language}-approval-requested", screens_dir)
    assert _plans(live_server, account.debtor_id) == [("pending_approval", 40, "weekly")]
    with live_server["factory"]() as session:
        handoffs = session.execute(
            select(Handoff.reason, Handoff.details)
            .join(Conversation, Conversation.id == Handoff.conversation_id)
            .where(Conversation.debtor_id == account.debtor_id)
        ).all()
    assert handoffs == [("plan_approval", "counter_offer_refused")]
    ((kind, body),) = timeline(live_server, account.debtor_id)
    assert kind == "plan_approval_requested" and "40 weekly instalments" in body


@LANGUAGES
def test_accept_the_counter_offer(
    phone: Any, live_server: dict[str, Any], screens_dir: Path, language: str
) -> None:
    base = live_server["url"]
    account = new_account(live_server, language)
    verify(phone, base, account.path)
    phone.goto(f"{base}{account.path}/plan")
    phone.fill("#installments", "40")
    phone.select_option("#frequency", "weekly")
    phone.get_by_role("button", name=t(language, "check_plan")).click()
    offer = phone.locator("form[action$='/plan/accept']")
    count = int(offer.locator("input[name=installments]").input_value())
    frequency = offer.locator("input[name=frequency]").input_value()
    assert 2 <= count < 40
    offer.get_by_role("button", name=t(language, "choose_plan")).click()
    phone.wait_for_url("**?done=plan")
    assert _plans(live_server, account.debtor_id) == [("active", count, frequency)]
    assert [k for k, _ in timeline(live_server, account.debtor_id)] == ["plan_created"]


# --- promises ------------------------------------------------------------------------------


@LANGUAGES
def test_promise_to_pay_by_a_date(
    phone: Any, live_server: dict[str, Any], screens_dir: Path, language: str
) -> None:
    from relance.db.models import Promise

    base = live_server["url"]
    account = new_account(live_server, language)
    verify(phone, base, account.path)
    phone.get_by_role("link", name=t(language, "action_promise")).click()
    phone.wait_for_url("**/promise")
    when = date.today() + timedelta(days=9)
    phone.fill("#promised_date", when.isoformat())
    phone.fill("#amount", "150,50" if language == "fr" else "150.50")
    phone.get_by_role("button", name=t(language, "promise_submit")).click()

    phone.wait_for_url("**?done=promise")
    main = text(phone)
    assert t(language, "done_promise") in main
    from relance.nlg.formatting import long_date

    line = t(
        language, "promise_line", amount=_money(15_050, language), date=long_date(when, language)
    )
    assert words(line) in main
    axe(phone, f"promise-{language}-recorded", screens_dir)
    (promise,) = _rows(live_server, Promise, account.debtor_id)
    assert (promise.amount_minor, promise.promised_date, promise.source) == (15_050, when, "portal")
    ((kind, body),) = timeline(live_server, account.debtor_id)
    assert kind == "promise_recorded" and when.isoformat() in body


# --- disputes ------------------------------------------------------------------------------

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def _stored_files(live_server: dict[str, Any]) -> set[str]:
    from relance.settings import get_settings

    folder = get_settings().var_dir / "portal_files"
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


@LANGUAGES
def test_dispute_an_invoice_with_an_attachment(
    phone: Any, live_server: dict[str, Any], screens_dir: Path, language: str
) -> None:
    from relance.db.models import Dispute
    from relance.portal.models import PortalAttachment
    from relance.settings import get_settings

    base = live_server["url"]
    account = new_account(live_server, language)
    first, second = account.invoice_ids
    verify(phone, base, account.path)
    phone.locator(f"a[href$='/dispute?invoice={second}']").click()
    phone.wait_for_url(f"**/dispute?invoice={second}")
    assert phone.input_value("#invoice_id") == str(second)  # the invoice it was opened from
    phone.get_by_label(t(language, "reason_not_received")).check()
    phone.fill("#details", "Livraison jamais arrivée" if language == "fr" else "Never delivered")
    phone.set_input_files(
        "#files", files=[{"name": "bon.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    phone.get_by_role("button", name=t(language, "dispute_submit")).click()

    phone.wait_for_url("**?done=dispute")
    main = text(phone)
    assert t(language, "done_dispute") in main and t(language, "dispute_open") in main
    axe(phone, f"dispute-{language}-recorded", screens_dir)
    (dispute,) = _rows(live_server, Dispute, account.debtor_id)
    assert (dispute.invoice_id, dispute.reason, dispute.status) == (second, "not_received", "open")
    (attached,) = _rows(live_server, PortalAttachment, account.debtor_id)
    assert (attached.dispute_id, attached.filename, attached.content_type) == (
        dispute.id,
        "bon.pdf",
        "application/pdf",
    )
    stored = get_settings().var_dir / "portal_files" / attached.stored_name
    assert stored.read_bytes() == PDF
    assert _invoice_statuses(live_server, [first, second]) == ["open", "disputed"]
    ((kind, body),) = timeline(live_server, account.debtor_id)
    assert kind == "dispute_created" and dispute.reference in body and "1 file(s)" in body

    # The debtor gets the file back from the dispute's card.
    link = phone.get_by_role("link", name="bon.pdf")
    response = phone.request.get(base + link.get_attribute("href"))
    assert (response.status, response.body()) == (200, PDF)


REFUSED = {
    "type": ("notes.txt", "text/plain", b"just some text", "refused_attachment_type"),
    "size": (
        "scan.pdf",
        "application/pdf",
        b"%PDF-" + b"0" * (5 * 1024 * 1024),
        "refused_attachment_too_large",
    ),
}


@LANGUAGES
@pytest.mark.parametrize("refused", list(REFUSED))
def test_a_refused_attachment_is_explained_and_nothing_is_stored(
    phone: Any, live_server: dict[str, Any], screens_dir: Path, language: str, refused: str
) -> None:
    from relance.db.models import Dispute

    name, mime, data, error = REFUSED[refused]
    base = live_server["url"]
    account = new_account(live_server, language)
    verify(phone, base, account.path)
    files_before = _stored_files(live_server)
    phone.goto(f"{base}{account.path}/dispute")
    phone.get_by_label(t(language, "reason_wrong_amount")).check()
    phone.fill("#details", "Montant faux" if language == "fr" else "Wrong amount")
    phone.set_input_files("#files", files=[{"name": name, "mimeType": mime, "buffer": data}])
    phone.get_by_role("button", name=t(language, "dispute_submit")).click()

    # The form again, with the reason and details kept and the file field to choose again.
    alert = phone.get_by_role("alert")
    assert words(alert.inner_text()) == words(t(language, error, name=name))
    assert phone.get_attribute("#files", "aria-invalid") == "true"
    assert "form-error" in phone.get_attribute("#files", "aria-describedby")
    assert phone.evaluate("document.activeElement.id") == "files"
    assert phone.is_checked("#reason-wrong_amount")
    assert phone.input_value("#details") == ("Montant faux" if language == "fr" else "Wrong amount")
    axe(phone, f"dispute-{language}-refused-{refused}", screens_dir)
    assert _rows(live_server, Dispute, account.debtor_id) == []
    assert _stored_files(live_server) == files_before
    assert _invoice_statuses(live_server, account.invoice_ids) == ["open", "open"]
    assert timeline(live_server, account.debtor_id) == []


# --- preferences ---------------------------------------------------------------------------


@LANGUAGES
def test_set_channel_language_and_contact_hours(
    phone: Any, live_server: dict[str, Any], screens_dir: Path, language: str
) -> None:
    from relance.db.models import Debtor

    base = live_server["url"]
    other = "en" if language == "fr" else "fr"
    account = new_account(live_server, language, channels=("sms", "whatsapp", "voice"))
    verify(phone, base, account.path)
    phone.get_by_role("link", name=t(language, "action_preferences")).click()
    phone.wait_for_url("**/preferences")
    phone.select_option("#channel", "whatsapp")
    phone.select_option("#language", other)
    phone.fill("#contact_from", "09:30")
    phone.fill("#contact_until", "12:00")
    phone.get_by_role("button", name=t(language, "save")).click()

    phone.wait_for_url("**?done=preferences")
    assert phone.evaluate("document.documentElement.lang") == other  # the page follows
    assert t(other, "done_preferences") in text(phone)
    axe(phone, f"preferences-{language}-saved", screens_dir)
    with live_server["factory"]() as session:
        debtor = session.get(Debtor, account.debtor_id)
        assert (debtor.preferred_channel, debtor.language) == ("whatsapp", other)
        assert (debtor.contact_from, debtor.contact_until) == (time(9, 30), time(12, 0))
    ((kind, body),) = timeline(live_server, account.debtor_id)
    assert kind == "preferences_set" and "whatsapp" in body and "09:30-12:00" in body

    # The form shows what is stored.
    phone.goto(f"{base}{account.path}/preferences")
    assert phone.input_value("#channel") == "whatsapp"
    assert phone.input_value("#contact_from") == "09:30"


def _tab_until(page: Any, test: str, limit: int = 40) -> None:
    """Press Tab until `test` (a JS expression on `el`, the focused element) holds."""
    script = f"() => {{ const el = document.activeElement; return !!el && ({test}); }}"
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(script):
            return
    raise AssertionError(f"Tab never reached an element where {test}")


def _choose_file_by_keyboard(page: Any, choosers: list[Any], file: dict[str, Any]) -> None:
    """Enter on the focused file field opens the chooser; `file` is picked in it. The chooser
    is caught by a listener set when the page was opened: `expect_file_chooser` turns the
    interception on only when called, and Chromium then misses one key press in three."""
    page.keyboard.press("Enter")
    for _ in range(50):
        if choosers:
            choosers.pop().set_files(files=[file])
            return
        page.wait_for_timeout(100)
    raise AssertionError("Enter on the file field opened no file chooser")


def _focused(page: Any) -> str:
    return str(page.evaluate("document.activeElement.id"))


@LANGUAGES
def test_keyboard_only_dispute_with_a_file_chosen_again_after_a_refusal(
    phone: Any, live_server: dict[str, Any], screens_dir: Path, language: str
) -> None:
    """From the identity check to a recorded dispute with the keyboard alone: the invoice's own
    link, the reason by arrow keys, the details, the file chooser opened with Enter; a refused
    file brings the focus back to the file field, where a good one is chosen again."""
    from relance.db.models import Dispute
    from relance.portal.models import PortalAttachment

    base = live_server["url"]
    account = new_account(live_server, language)
    first, second = account.invoice_ids
    choosers: list[Any] = []
    phone.on("filechooser", lambda chooser: choosers.append(chooser))
    phone.goto(base + account.path)
    _tab_until(phone, "el.id === 'answer'")
    phone.keyboard.type(POSTCODE)
    with phone.expect_navigation():
        phone.keyboard.press("Enter")

    _tab_until(phone, f"(el.getAttribute('href') || '').endsWith('/dispute?invoice={second}')")
    with phone.expect_navigation():
        phone.keyboard.press("Enter")
    assert phone.input_value("#invoice_id") == str(second)
    _tab_until(phone, "el.name === 'reason'")
    phone.keyboard.press("ArrowDown")  # the second reason, checked as the focus moves
    assert _focused(phone) == "reason-wrong_amount" and phone.is_checked("#reason-wrong_amount")
    _tab_until(phone, "el.id === 'details'")
    phone.keyboard.type("Facturé deux fois" if language == "fr" else "Billed twice")
    _tab_until(phone, "el.id === 'files'")
    _choose_file_by_keyboard(
        phone, choosers, {"name": "facture.txt", "mimeType": "text/plain", "buffer": b"plain"}
    )
    _tab_until(phone, "el.tagName === 'BUTTON' && el.form && el.form.action.endsWith('/dispute')")
    with phone.expect_navigation():
        phone.keyboard.press("Enter")

    # Refused: the focus is on the file field again, the rest kept.
    assert phone.get_by_role("alert").is_visible() and _focused(phone) == "files"
    assert phone.is_checked("#reason-wrong_amount")
    axe(phone, f"dispute-{language}-keyboard-refused", screens_dir)
    assert _rows(live_server, Dispute, account.debtor_id) == []
    _choose_file_by_keyboard(
        phone, choosers, {"name": "facture.pdf", "mimeType": "application/pdf", "buffer": PDF}
    )
    _tab_until(phone, "el.tagName === 'BUTTON' && el.form && el.form.action.endsWith('/dispute')")
    with phone.expect_navigation():
        phone.keyboard.press("Enter")

    assert phone.url.endswith("?done=dispute")
    (dispute,) = _rows(live_server, Dispute, account.debtor_id)
    assert (dispute.invoice_id, dispute.reason) == (second, "wrong_amount")
    assert "deux fois" in dispute.details or "twice" in dispute.details
    (attached,) = _rows(live_server, PortalAttachment, account.debtor_id)
    assert attached.filename == "facture.pdf"
    assert _invoice_statuses(live_server, [first, second]) == ["open", "disputed"]


# --- a plan that collects itself outside the euro zone: a card on file ---------------------


@LANGUAGES
def test_outside_the_euro_zone_a_chosen_plan_is_paid_by_a_card_on_file(
    phone: Any, live_server: dict[str, Any], screens_dir: Path, language: str
) -> None:
    """A debtor in Geneva accepts a plan: the card is offered (SEPA does not reach them), its
    consent read, a mistyped test number refused on the sandbox's page, the right one kept;
    the card is shown active, and the debtor stops it."""
    from relance.ledger.models import SavedPaymentMethod

    base = live_server["url"]
    account = new_account(live_server, language, country="CH", city="Genève")
    verify(phone, base, account.path)
    phone.goto(f"{base}{account.path}/plan")
    phone.locator("form[action$='/plan/accept'] button").first.click()
    phone.wait_for_url("**?done=plan")
    assert phone.get_by_role("link", name=t(language, "direct_debit_offer")).count() == 0

    phone.get_by_role("link", name=t(language, "card_offer")).click()
    phone.wait_for_url("**/card")
    consent = text(phone)
    assert t(language, "card_intro") in consent and "Relance Sandbox" in consent
    axe(phone, f"card-{language}-consent", screens_dir)

    phone.get_by_role("button", name=t(language, "card_continue")).click()
    phone.wait_for_url("**/pay/sandbox/card-setup/**")
    assert phone.evaluate("document.documentElement.lang") == language
    back = phone.get_by_role("link", name=payer_t(language, "back_to_account"))
    assert back.get_attribute("href") == account.path  # the set-up's cancel URL: no "thanks"
    axe(phone, f"card-{language}-sandbox-page", screens_dir)
    phone.fill("#number", "4242 4242 4242 4241")
    phone.get_by_role("button", name=payer_t(language, "card_accept")).click()
    assert said(phone) == payer_t(language, "card_invalid_number")
    assert phone.evaluate("document.activeElement.id") == "number"
    axe(phone, f"card-{language}-sandbox-invalid-number", screens_dir)

    phone.fill("#number", "4242 4242 4242 4242")
    phone.get_by_role("button", name=payer_t(language, "card_accept")).click()
    phone.wait_for_url("**?done=card")
    main = text(phone)
    assert t(language, "done_card") in main
    assert t(language, "card_active_last4", last4="4242") in main
    axe(phone, f"card-{language}-active", screens_dir)
    with live_server["factory"]() as session:
        (saved,) = session.scalars(
            select(SavedPaymentMethod).where(SavedPaymentMethod.debtor_id == account.debtor_id)
        ).all()
    assert (saved.kind, saved.status, saved.last4) == ("card", "active", "4242")
    assert [k for k, _ in timeline(live_server, account.debtor_id)] == [
        "plan_created",
        "card_started",
    ]

    phone.get_by_role("button", name=t(language, "card_revoke")).click()
    phone.wait_for_url("**?done=card_revoked")
    assert t(language, "done_card_revoked") in text(phone)
    axe(phone, f"card-{language}-stopped", screens_dir)
    assert timeline(live_server, account.debtor_id)[-1][0] == "card_revoked"


# --- an automatic payment that failed --------------------------------------------------------


@LANGUAGES
def test_a_refused_debit_is_explained_then_the_instalment_paid_now(
    phone: Any, live_server: dict[str, Any], screens_dir: Path, language: str
) -> None:
    """The bank returned the first instalment's debit (account closed): the overview says so
    beside it, in the words of the message the debtor got, with the button to pay it now; paid
    through the sandbox, the debtor is back on the overview and the explanation has gone."""
    from portal.pages import charge_failure
    from relance.db.models import Debtor, Invoice
    from tests.factories import make_installment_charge, make_mandate, make_plan

    base = live_server["url"]
    account = new_account(live_server, language, amounts=(40_000,), days_late=(40,))
    with live_server["factory"].begin() as session:
        debtor = session.get(Debtor, account.debtor_id)
        invoice = session.get(Invoice, account.invoice_ids[0])
        plan = make_plan(
            session,
            debtor,
            [20_000, 20_000],
            first_due=date.today() - timedelta(days=3),
            invoices=[invoice],
        )
        mandate = make_mandate(session, debtor, plan, status="inactive")
        first = plan.installments[0]
        make_installment_charge(
            session, first, mandate, status="failed", failure_code="account_closed"
        )
        first_id = first.id
    verify(phone, base, account.path)

    failure = phone.locator(f"#failure-{first_id}")
    reason = words(charge_failure(language, "sepa_debit", "account_closed"))
    assert words(failure.inner_text()) == f"{reason} {t(language, 'charge_failed_next')}"
    assert phone.locator("li", has=failure).locator(".tag").inner_text() == t(
        language, "installment_to_pay"
    )
    button = phone.get_by_role("button", name=t(language, "pay_installment", seq=1))
    assert button.get_attribute("aria-describedby") == f"failure-{first_id}"
    axe(phone, f"failure-{language}-refused-debit", screens_dir)

    button.click()
    phone.wait_for_url("**/pay/*")
    amount = _money(20_000, language)
    phone.get_by_role("button", name=payer_t(language, "pay_button", amount=amount)).click()
    phone.wait_for_url("**/pay/sandbox/*")
    phone.get_by_role("button", name=payer_t(language, "sandbox_pay")).click()
    phone.wait_for_url(f"**{account.path}?done=paid&link=*")
    assert said(phone, "status") == t(language, "done_paid", amount=amount)
    assert phone.locator(f"#failure-{first_id}").count() == 0
    assert t(language, "installment_paid") in text(phone)
    axe(phone, f"failure-{language}-paid-now", screens_dir)
