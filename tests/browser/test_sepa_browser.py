"""SEPA Direct Debit pages in headless Chromium on a phone-sized screen, French and English: the
portal's direct-debit offer and mandate text after a plan is accepted, the sandbox provider's
mandate page (IBAN checked by schwifty, a refused one explained), the active mandate and its
revocation; a keyboard-only path through all of it. Then the collector's view of the same: the
debtor's mandates and installment charge attempts on the console's conversation page. axe-core
finds no serious or critical violation on any of these pages (the console: on that section);
each is saved as a screenshot ($RELANCE_SCREENSHOTS)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.browser.conftest import screenshot
from tests.browser.portal_support import axe, t

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
POSTCODE = "69003"
IBAN = "FR14 2004 1010 0505 0001 3M0 2606"
BAD_IBAN = "FR14 2004 1010 0505 0001 3M0 2607"  # one digit off: the check digits fail


@pytest.fixture(scope="module")
def sepa_portal(live_server: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Euro-zone debtors (French, English, and one for the keyboard path) with two overdue
    invoices and a portal link each; the sandbox provider behind the payments port."""
    from payment_links.providers.sandbox import SandboxProvider
    from payment_links.wiring import PaymentLinksAdapter
    from relance.ledger import ports
    from relance.portal.access import issue_access
    from relance.settings import get_settings
    from tests.factories import make_debtor, make_invoice

    previous = ports._payments
    ports.install_payments(PaymentLinksAdapter(SandboxProvider(get_settings())))
    links: dict[str, str] = {}
    ids: dict[str, int] = {}
    with live_server["factory"].begin() as session:
        for key, language in (("fr", "fr"), ("en", "en"), ("keyboard", "fr")):
            debtor = make_debtor(
                session, language=language, country="FR", postcode=POSTCODE, channels=("sms",)
            )
            for amount, late in ((48_000, 25), (12_990, 5)):
                make_invoice(session, debtor, amount, due=date.today() - timedelta(days=late))
            _, url = issue_access(session, debtor)
            links[key] = url.removeprefix(live_server["url"])
            ids[key] = debtor.id
    yield {"url": live_server["url"], "links": links, "ids": ids}
    ports._payments = previous


@pytest.fixture
def phone(browser: Any, live_server: dict[str, Any]) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def _payer_t(language: str, key: str) -> str:
    """As `_text` reads it: runs of white space, no-break ones too, as one space."""
    from payment_links.pages import translate

    return " ".join(translate(language, key).split())


def _mandates(live_server: dict[str, Any], debtor_id: int) -> list[Any]:
    from relance.ledger.models import SavedPaymentMethod

    with live_server["factory"]() as session:
        return list(
            session.scalars(
                select(SavedPaymentMethod)
                .where(SavedPaymentMethod.debtor_id == debtor_id)
                .order_by(SavedPaymentMethod.id)
            )
        )


def _text(page: Any) -> str:
    return " ".join(page.inner_text("main").split())


@pytest.mark.parametrize("language", ["fr", "en"])
def test_direct_debit_offer_mandate_and_revocation_pass_axe(
    phone: Any,
    sepa_portal: dict[str, Any],
    live_server: dict[str, Any],
    screens_dir: Path,
    language: str,
) -> None:
    base, path = sepa_portal["url"], sepa_portal["links"][language]
    phone.goto(base + path)
    phone.fill("#answer", POSTCODE)
    phone.click("button[type=submit]")
    phone.wait_for_url(f"**{path}")

    # A plan the policy accepts on its own, chosen on the plan page.
    phone.goto(f"{base}{path}/plan")
    phone.click("form[action$='/plan/accept'] button >> nth=0")
    phone.wait_for_url("**?done=plan")
    offer = phone.get_by_role("link", name=t(language, "direct_debit_offer"))
    assert offer.is_visible()
    axe(phone, f"sepa-{language}-offer", screens_dir)

    offer.click()
    phone.wait_for_url("**/direct-debit")
    main = _text(phone)
    assert t(language, "direct_debit_intro") in main
    mandate_text = " ".join(t(language, "sepa_mandate_text", provider=_provider(language)).split())
    assert mandate_text in main
    axe(phone, f"sepa-{language}-mandate-text", screens_dir)

    phone.get_by_role("button", name=t(language, "direct_debit_continue")).click()
    phone.wait_for_url("**/pay/sandbox/mandate/**")
    assert phone.evaluate("document.documentElement.lang") == language
    assert mandate_text in _text(phone)  # the very text the debtor read, as stored
    axe(phone, f"sepa-{language}-sandbox-mandate", screens_dir)

    phone.fill("#iban", BAD_IBAN)
    phone.get_by_role("button", name=_payer_t(language, "mandate_accept")).click()
    alert = phone.get_by_role("alert")
    assert " ".join(alert.inner_text().split()) == _payer_t(language, "mandate_invalid_iban")
    assert phone.get_attribute("#iban", "aria-invalid") == "true"
    assert phone.input_value("#iban") == BAD_IBAN  # kept, to be corrected rather than retyped
    axe(phone, f"sepa-{language}-sandbox-mandate-invalid-iban", screens_dir)
    assert [m.status for m in _mandates(live_server, sepa_portal["ids"][language])] == ["pending"]

    phone.fill("#iban", IBAN)
    phone.get_by_role("button", name=_payer_t(language, "mandate_accept")).click()
    phone.wait_for_url("**?done=mandate")
    (saved,) = _mandates(live_server, sepa_portal["ids"][language])
    assert (saved.status, saved.last4) == ("active", "2606")
    main = _text(phone)
    assert t(language, "done_mandate") in main
    assert t(language, "mandate_active", reference=saved.mandate_reference, last4="2606") in main
    assert "2004 1010" not in phone.content()
    axe(phone, f"sepa-{language}-mandate-active", screens_dir)

    phone.get_by_role("button", name=t(language, "mandate_revoke")).click()
    phone.wait_for_url("**?done=mandate_revoked")
    assert t(language, "done_mandate_revoked") in _text(phone)
    assert [m.status for m in _mandates(live_server, sepa_portal["ids"][language])] == ["revoked"]
    axe(phone, f"sepa-{language}-mandate-revoked", screens_dir)


def _provider(language: str) -> str:
    return t(language, "payment_provider_sandbox")


def _tab_until(page: Any, test: str, limit: int = 40) -> None:
    """Press Tab until `test` (a JS expression on `el`, the focused element) holds."""
    script = f"() => {{ const el = document.activeElement; return !!el && ({test}); }}"
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(script):
            return
    raise AssertionError(f"Tab never reached an element where {test}")


def _enter(page: Any, lands_on: str) -> None:
    """Press Enter on the focused control; the page it submits or opens is `lands_on`."""
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert lands_on in page.url, page.url


def test_keyboard_only_from_the_plan_to_a_mandate_and_its_revocation(
    phone: Any, sepa_portal: dict[str, Any], live_server: dict[str, Any], screens_dir: Path
) -> None:
    base, path = sepa_portal["url"], sepa_portal["links"]["keyboard"]
    debtor_id = sepa_portal["ids"]["keyboard"]
    phone.goto(base + path)
    _tab_until(phone, "el.id === 'answer'")
    phone.keyboard.type(POSTCODE)
    _enter(phone, path)

    _tab_until(phone, "(el.getAttribute('href') || '').endsWith('/plan')")
    _enter(phone, f"{path}/plan")
    _tab_until(phone, "el.tagName === 'BUTTON' && el.form.action.endsWith('/plan/accept')")
    _enter(phone, "?done=plan")

    _tab_until(phone, "(el.getAttribute('href') || '').endsWith('/direct-debit')")
    _enter(phone, "/direct-debit")
    _tab_until(phone, "el.tagName === 'BUTTON' && el.form.action.endsWith('/direct-debit')")
    _enter(phone, "/pay/sandbox/mandate/")

    _tab_until(phone, "el.id === 'iban'")
    phone.keyboard.type(BAD_IBAN)
    _enter(phone, "/pay/sandbox/mandate/")  # Enter in the field submits the form
    assert phone.get_by_role("alert").is_visible()
    assert phone.evaluate("document.activeElement.id") == "iban"  # focus back on the field
    phone.keyboard.press("End")
    phone.keyboard.press("Backspace")
    phone.keyboard.type("6")  # the mistyped last digit corrected, the rest kept
    # The simulated outcome: arrow keys move within the radio group, Tab leaves it.
    _tab_until(phone, "el.type === 'radio'")
    phone.keyboard.press("ArrowDown")
    assert phone.evaluate("document.activeElement.value") == "fail"
    phone.keyboard.press("ArrowUp")
    _tab_until(phone, "el.tagName === 'BUTTON'")
    _enter(phone, "?done=mandate")
    screenshot(phone, screens_dir / "sepa-keyboard-mandate-active.png")
    (saved,) = _mandates(live_server, debtor_id)
    assert (saved.status, saved.last4) == ("active", "2606")
    assert saved.payment_method_ref.startswith("pm_sandbox_sepa_ok_")

    _tab_until(phone, "el.tagName === 'BUTTON' && el.form.action.includes('/mandates/')")
    _enter(phone, "?done=mandate_revoked")
    assert t("fr", "done_mandate_revoked") in _text(phone)
    assert [m.status for m in _mandates(live_server, debtor_id)] == ["revoked"]


@pytest.fixture(scope="module")
def failed_debit_case(live_server: dict[str, Any]) -> int:
    """A handed-off debtor whose first debit was returned (account closed) after the mandate
    went inactive, whose new mandate paid the retry and is debiting the next installment."""
    from relance.db.base import utcnow
    from tests.factories import (
        make_handed_off_case,
        make_installment_charge,
        make_mandate,
        make_plan,
    )

    with live_server["factory"].begin() as session:
        debtor, conversation, _ = make_handed_off_case(session, name="Inès Garnier")
        plan = make_plan(session, debtor, [15_000, 15_000], first_due=date.today())
        old = make_mandate(session, debtor, plan, status="inactive", revoked_at=utcnow())
        new = make_mandate(session, debtor, plan)
        first, second = plan.installments
        make_installment_charge(
            session, first, old, status="failed", failure_code="account_closed", failed_at=utcnow()
        )
        make_installment_charge(session, first, new, attempt=2, status="succeeded")
        make_installment_charge(session, second, new, status="processing")
        return conversation.id


def test_console_shows_mandates_and_charge_attempts_and_passes_axe(
    page: Any, live_server: dict[str, Any], failed_debit_case: int, screens_dir: Path
) -> None:
    """On the collector's desktop screen (the console is not laid out for phones)."""
    from tests.browser.conftest import sign_in
    from tests.browser.seed import COLLECTOR, PASSWORD

    sign_in(page, live_server["url"], COLLECTOR, PASSWORD)
    page.goto(f"{live_server['url']}/console/conversations/{failed_debit_case}")
    section = page.locator("#payment-methods")
    section.scroll_into_view_if_needed()
    text = " ".join(section.inner_text().split())
    assert "Bank account closed account_closed" in text
    assert text.count("SEPA mandate SBX-") == 2 and "stopped by the bank" in text
    assert section.get_by_role("columnheader", name="Status").is_visible()
    section.screenshot(path=str(screens_dir / "sepa-console-section.png"))
    axe(page, "sepa-console", screens_dir, context="#payment-methods")
