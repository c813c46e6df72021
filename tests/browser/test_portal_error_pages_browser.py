"""axe-core on the pages a debtor reaches when something goes wrong, in French and English on a
phone-sized screen: a link unknown, expired or revoked; the identity check locked out; the
sign-in refused; a form posted from a stale page (CSRF); a refusal of the services (nothing
ticked, an unreadable form, a promise date too far, contact hours outside the legal windows,
files too heavy to send); and the payer pages around a payment link (unknown, expired, already
paid, paid by other means, being confirmed, received, cancelled; the sandbox's unknown checkout
and mandate). Each page is checked for its HTTP status and its wording too, and saved as a
screenshot ($RELANCE_SCREENSHOTS)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.browser.portal_support import (
    PHONE,
    POSTCODE,
    Account,
    axe,
    new_account,
    payer_t,
    said,
    t,
    text,
    verify,
    words,
)

pytestmark = pytest.mark.browser

LANGUAGES = pytest.mark.parametrize("language", ["fr", "en"])
LOCALES = {"fr": "fr-FR", "en": "en-GB"}


@pytest.fixture(scope="module")
def payments(live_server: dict[str, Any]) -> Iterator[None]:
    from payment_links.providers.sandbox import SandboxProvider
    from payment_links.wiring import PaymentLinksAdapter
    from relance.ledger import ports
    from relance.settings import get_settings

    previous = ports._payments
    ports.install_payments(PaymentLinksAdapter(SandboxProvider(get_settings())))
    yield
    ports._payments = previous


@pytest.fixture
def phone_in(browser: Any, live_server: dict[str, Any], payments: None) -> Iterator[Any]:
    """A phone whose browser asks for `language` (Accept-Language), as the debtor's would."""
    contexts: list[Any] = []

    def make(language: str) -> Any:
        context = browser.new_context(
            viewport=PHONE, device_scale_factor=1, is_mobile=True, locale=LOCALES[language]
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page

    yield make
    for context in contexts:
        context.close()


def _goto(page: Any, url: str) -> int:
    response = page.goto(url)
    assert response is not None
    return int(response.status)


def _submitted(page: Any, click: Any, timeout: float = 10_000) -> int:
    """Click what submits a form; the HTTP status of the page it lands on."""
    with page.expect_navigation(timeout=timeout) as navigation:
        click()
    return int(navigation.value.status)


def _access_row(live_server: dict[str, Any], account: Account, change: Any) -> None:
    from sqlalchemy import select

    from relance.portal.models import PortalAccess

    with live_server["factory"].begin() as session:
        access = session.scalars(
            select(PortalAccess).where(PortalAccess.debtor_id == account.debtor_id)
        ).one()
        change(session, access)


# --- the portal ----------------------------------------------------------------------------


@LANGUAGES
def test_link_and_identity_error_pages(
    phone_in: Any, live_server: dict[str, Any], screens_dir: Path, language: str
) -> None:
    from relance.db.base import utcnow
    from relance.portal.access import revoke

    base = live_server["url"]
    phone = phone_in(language)

    assert _goto(phone, f"{base}/portal/{'A' * 43}") == 404
    assert t(language, "unknown") in text(phone)
    axe(phone, f"errors-{language}-link-unknown", screens_dir)

    expired = new_account(live_server, language)

    def expire(session: Any, access: Any) -> None:
        access.expires_at = utcnow() - timedelta(minutes=1)

    _access_row(live_server, expired, expire)
    assert _goto(phone, base + expired.path) == 410
    assert t(language, "expired") in text(phone)
    axe(phone, f"errors-{language}-link-expired", screens_dir)
    # The page says the account opens with the customer number: it leads there.
    phone.get_by_role("link", name=t(language, "sign_in_with_number")).click()
    phone.wait_for_url("**/portal?lang=*")
    assert phone.locator("#customer_number").is_visible()
    assert phone.evaluate("document.documentElement.lang") == language

    revoked = new_account(live_server, language)
    _access_row(live_server, revoked, lambda s, a: revoke(s, a, actor="test"))
    assert _goto(phone, base + revoked.path) == 410
    assert t(language, "revoked") in text(phone)
    axe(phone, f"errors-{language}-link-revoked", screens_dir)

    # Wrong answers until the link locks: 401 with the attempts left, then 429.
    locked = new_account(live_server, language)
    phone.goto(base + locked.path)
    statuses = []
    for _ in range(3):
        phone.fill("#answer", "00000")
        statuses.append(_submitted(phone, lambda: phone.click("button[type=submit]")))
    assert statuses == [401, 401, 429]
    assert said(phone) == t(language, "identity_locked")
    assert phone.locator("#answer").count() == 0
    axe(phone, f"errors-{language}-identity-locked", screens_dir)

    # Sign-in without a link, refused the same way for any wrong pair.
    _goto(phone, f"{base}/portal")
    phone.fill("#customer_number", "C-000000")
    phone.fill("#answer", POSTCODE)
    assert _submitted(phone, lambda: phone.click("button[type=submit]")) == 401
    assert said(phone) == t(language, "sign_in_failed")
    axe(phone, f"errors-{language}-sign-in-refused", screens_dir)


@LANGUAGES
def test_refusals_of_the_forms(
    phone_in: Any, live_server: dict[str, Any], screens_dir: Path, language: str
) -> None:
    base = live_server["url"]
    phone = phone_in(language)
    account = new_account(live_server, language)
    verify(phone, base, account.path)

    # "Pay the ticked invoices" with none ticked.
    button = phone.get_by_role("button", name=t(language, "pay_selected"))
    assert _submitted(phone, button.click) == 400
    assert said(phone) == t(language, "error_no_invoice_chosen")
    axe(phone, f"errors-{language}-nothing-ticked", screens_dir)

    # A form posted from a page left open elsewhere (its CSRF token no longer matches).
    phone.goto(f"{base}{account.path}/promise")
    phone.locator("form[action$='/promise'] input[name=csrf_token]").evaluate(
        "field => { field.value = 'stale'; }"
    )
    phone.fill("#promised_date", (date.today() + timedelta(days=3)).isoformat())
    submit = phone.get_by_role("button", name=t(language, "promise_submit"))
    assert _submitted(phone, submit.click) == 403
    assert t(language, "csrf") in text(phone)
    axe(phone, f"errors-{language}-csrf", screens_dir)

    # An unreadable form (a number of instalments the field would not let through).
    phone.goto(f"{base}{account.path}/plan")
    phone.evaluate("document.querySelector('#installments').removeAttribute('min')")
    phone.fill("#installments", "1")
    check = phone.get_by_role("button", name=t(language, "check_plan"))
    assert _submitted(phone, check.click) == 422
    assert said(phone) == t(language, "error_bad_form")
    axe(phone, f"errors-{language}-bad-form", screens_dir)

    # A promise beyond the allowed window: the form again, the date marked.
    phone.goto(f"{base}{account.path}/promise")
    phone.evaluate("document.querySelector('#promised_date').removeAttribute('max')")
    phone.fill("#promised_date", (date.today() + timedelta(days=120)).isoformat())
    submit = phone.get_by_role("button", name=t(language, "promise_submit"))
    assert _submitted(phone, submit.click) == 422
    assert said(phone) == t(language, "error_promise_date_too_late")
    assert phone.get_attribute("#promised_date", "aria-invalid") == "true"
    axe(phone, f"errors-{language}-promise-too-late", screens_dir)

    # Contact hours outside the legal windows.
    phone.goto(f"{base}{account.path}/preferences")
    phone.fill("#contact_from", "22:00")
    phone.fill("#contact_until", "23:30")
    save = phone.get_by_role("button", name=t(language, "save"))
    assert _submitted(phone, save.click) == 400
    alert = said(phone)
    assert alert == t(language, "error_hours_outside_legal_windows")
    assert phone.input_value("#contact_from") == "22:00"
    axe(phone, f"errors-{language}-hours-outside-windows", screens_dir)

    # Files too heavy for the request at all: a page, in the debtor's language, not JSON.
    phone.goto(f"{base}{account.path}/dispute")
    phone.get_by_label(t(language, "reason_other")).check()
    heavy = b"%PDF-" + b"0" * (16 * 1024 * 1024)
    phone.set_input_files(  # 16 MB through the DevTools protocol: slow on a busy machine
        "#files",
        files=[{"name": "scan.pdf", "mimeType": "application/pdf", "buffer": heavy}],
        timeout=60_000,
    )
    send = phone.get_by_role("button", name=t(language, "dispute_submit"))
    assert _submitted(phone, send.click, timeout=60_000) == 413
    assert said(phone) == t(language, "error_request_too_large")
    axe(phone, f"errors-{language}-files-too-heavy", screens_dir)
    phone.get_by_role("link", name=t(language, "back")).click()
    phone.wait_for_url("**/dispute")

    # Signing out: the identity check again.
    phone.goto(base + account.path)
    logout = phone.get_by_role("button", name=t(language, "logout"))
    _submitted(phone, logout.click)
    assert phone.locator("#answer").is_visible()
    axe(phone, f"errors-{language}-signed-out", screens_dir)


# --- the payer pages -----------------------------------------------------------------------


def _link(live_server: dict[str, Any], account: Account, change: Any = None) -> str:
    """A payment link for the account's open invoices; `change(session, link)` alters it."""
    from relance.db.models import Debtor
    from relance.ledger.ports import get_payments

    with live_server["factory"].begin() as session:
        debtor = session.get(Debtor, account.debtor_id)
        link, url = get_payments().create_link(session, debtor=debtor, purpose="balance")
        if change is not None:
            change(session, link)
    return url


@LANGUAGES
def test_payer_pages_around_a_payment_link(
    phone_in: Any, live_server: dict[str, Any], screens_dir: Path, language: str
) -> None:
    from relance.db.base import utcnow
    from relance.db.models import Invoice

    base = live_server["url"]
    phone = phone_in(language)
    account = new_account(live_server, language)

    assert _goto(phone, f"{base}/pay/{'A' * 43}") == 404
    assert payer_t(language, "unknown") in text(phone)
    axe(phone, f"payer-{language}-unknown", screens_dir)

    def expire(session: Any, link: Any) -> None:
        link.expires_at = utcnow() - timedelta(minutes=1)

    assert _goto(phone, _link(live_server, account, expire)) == 410
    assert words(payer_t(language, "expired", phone="")[:40]) in text(phone)
    axe(phone, f"payer-{language}-expired", screens_dir)

    url = _link(live_server, account)
    assert _goto(phone, f"{url}?checkout=cancelled") == 200
    assert said(phone, "status") == payer_t(language, "cancelled")
    axe(phone, f"payer-{language}-cancelled", screens_dir)
    assert _goto(phone, f"{url}?checkout=success") == 200  # back from the provider, not yet told
    assert payer_t(language, "confirming") in text(phone)
    axe(phone, f"payer-{language}-confirming", screens_dir)

    # Paid: the success page, then the link is used up.
    phone.goto(url)
    phone.locator("form button").click()
    phone.wait_for_url("**/pay/sandbox/*")
    phone.get_by_role("button", name=payer_t(language, "sandbox_pay")).click()
    phone.wait_for_url("**?checkout=success")  # the checkout's success URL, as Stripe's
    assert payer_t(language, "received_title") in text(phone)
    assert _goto(phone, f"{url}?checkout=success") == 200
    assert payer_t(language, "received_title") in text(phone)
    axe(phone, f"payer-{language}-received", screens_dir)
    assert _goto(phone, url) == 410
    assert payer_t(language, "paid_title") in text(phone)
    axe(phone, f"payer-{language}-already-paid", screens_dir)

    # A link whose invoices were paid some other way.
    other = new_account(live_server, language)
    settled = _link(live_server, other)
    with live_server["factory"].begin() as session:
        for invoice_id in other.invoice_ids:
            invoice = session.get(Invoice, invoice_id)
            invoice.paid_minor, invoice.status = invoice.amount_minor, "paid"
    assert _goto(phone, settled) == 410
    assert payer_t(language, "settled_title") in text(phone)
    axe(phone, f"payer-{language}-settled", screens_dir)

    # The sandbox's pages for a checkout or a mandate that does not exist.
    assert _goto(phone, f"{base}/pay/sandbox/cs_sandbox_nothing") == 404
    axe(phone, f"payer-{language}-sandbox-unknown", screens_dir)
    assert _goto(phone, f"{base}/pay/sandbox/mandate/seti_sandbox_nothing") == 404
    assert payer_t(language, "mandate_unknown") in text(phone)
    axe(phone, f"payer-{language}-mandate-unknown", screens_dir)
