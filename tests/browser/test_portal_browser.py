"""The debtor portal in headless Chromium on a phone-sized screen: axe-core finds no serious or
critical violation on any page, in French and English; a keyboard-only path from the identity
check to a recorded promise; every page is saved as a screenshot ($RELANCE_SCREENSHOTS)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
POSTCODE = "69003"


@pytest.fixture(scope="module")
def portal_link(live_server: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A debtor with two open invoices (one B2B-late), a letter-free account and a link."""
    from payment_links.providers.sandbox import SandboxProvider
    from payment_links.wiring import PaymentLinksAdapter
    from relance.db.models import Contact, Debtor, Invoice
    from relance.ledger import ports
    from relance.portal.access import issue_access
    from relance.settings import get_settings

    previous = ports._payments
    ports.install_payments(PaymentLinksAdapter(SandboxProvider(get_settings())))
    factory = live_server["factory"]
    today = date.today()
    links = {}
    with factory.begin() as session:
        for language in ("fr", "en"):
            debtor = Debtor(
                customer_number=f"P-77{len(links)}",
                name="Camille Durand",
                company="Atelier Durand SARL",
                segment="b2b",
                language=language,
                postcode=POSTCODE,
                address_line="3 rue des Lilas",
                city="Lyon",
            )
            debtor.contacts.append(Contact(channel="sms", address=f"+3361234560{len(links)}"))
            debtor.contacts.append(
                Contact(channel="whatsapp", address=f"whatsapp:+3361234560{len(links)}")
            )
            session.add(debtor)
            session.flush()
            for number, amount, late in (("F-2026-101", 48000, 25), ("F-2026-117", 12990, 5)):
                session.add(
                    Invoice(
                        debtor_id=debtor.id,
                        number=f"{number}-{language}",
                        amount_minor=amount,
                        currency="EUR",
                        issue_date=today - timedelta(days=late + 30),
                        due_date=today - timedelta(days=late),
                    )
                )
            _, url = issue_access(session, debtor)
            links[language] = url.removeprefix(live_server["url"])
    yield {"url": live_server["url"], "links": links}
    ports._payments = previous


@pytest.fixture
def phone(browser: Any, live_server: dict[str, Any]) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def _axe(page: Any, name: str, screens: Path) -> None:
    from axe_playwright_python.sync_playwright import Axe

    screenshot(page, screens / f"portal-{name}.png")
    results = Axe().run(page)
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"{name}: {bad}"


def _verify(page: Any, base: str, path: str) -> None:
    page.goto(base + path)
    page.fill("#answer", POSTCODE)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{path}")


@pytest.mark.parametrize("language", ["fr", "en"])
def test_every_portal_page_passes_axe(
    phone: Any, portal_link: dict[str, Any], screens_dir: Path, language: str
) -> None:
    base, path = portal_link["url"], portal_link["links"][language]
    phone.goto(base + "/portal")
    _axe(phone, f"{language}-sign-in", screens_dir)
    phone.goto(base + path)
    _axe(phone, f"{language}-identity", screens_dir)
    phone.fill("#answer", "00000")
    phone.click("button[type=submit]")
    _axe(phone, f"{language}-identity-error", screens_dir)
    _verify(phone, base, path)
    _axe(phone, f"{language}-overview", screens_dir)
    for page_name in ("plan", "promise", "dispute", "preferences"):
        phone.goto(f"{base}{path}/{page_name}")
        _axe(phone, f"{language}-{page_name}", screens_dir)
    phone.goto(f"{base}{path}/plan")
    phone.fill("#installments", "40")
    phone.select_option("#frequency", "weekly")
    phone.click("form[action$='/plan/evaluate'] button")
    _axe(phone, f"{language}-plan-counter-offer", screens_dir)


def test_keyboard_only_from_identity_to_a_promise(
    phone: Any, portal_link: dict[str, Any], live_server: dict[str, Any], screens_dir: Path
) -> None:
    base, path = portal_link["url"], portal_link["links"]["fr"]
    phone.goto(base + path)
    # Skip link first, then the language switch, then the answer field.
    phone.keyboard.press("Tab")
    assert phone.evaluate("document.activeElement.className") == "skip"
    phone.keyboard.press("Enter")
    for _ in range(5):
        phone.keyboard.press("Tab")
        if phone.evaluate("document.activeElement.id") == "answer":
            break
    assert phone.evaluate("document.activeElement.id") == "answer"
    phone.keyboard.type(POSTCODE)
    phone.keyboard.press("Enter")
    phone.wait_for_url(f"**{path}")
    # To the promise page by keyboard.
    for _ in range(30):
        phone.keyboard.press("Tab")
        href = phone.evaluate("document.activeElement.getAttribute('href') || ''")
        if href.endswith("/promise"):
            break
    assert href.endswith("/promise")
    phone.keyboard.press("Enter")
    phone.wait_for_url("**/promise")
    phone.focus("#promised_date")
    when = date.today() + timedelta(days=6)
    phone.keyboard.type(when.strftime("%m%d%Y"))  # Chromium's date field takes typed digits
    for _ in range(4):
        phone.keyboard.press("Tab")
        if phone.evaluate("document.activeElement.id") == "amount":
            break
    assert phone.evaluate("document.activeElement.id") == "amount"
    assert phone.input_value("#promised_date") == when.isoformat()
    phone.keyboard.type("50")
    phone.keyboard.press("Enter")
    phone.wait_for_url("**?done=promise")
    screenshot(phone, screens_dir / "portal-fr-promise-done.png")
    assert "Votre promesse est enregistrée" in phone.inner_text("main")

    from relance.db.models import Promise

    with live_server["factory"]() as session:
        promises = session.scalars(select(Promise).where(Promise.source == "portal")).all()
    assert [(p.amount_minor, p.promised_date) for p in promises] == [(5000, when)]
