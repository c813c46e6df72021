"""What the portal's browser tests share: a fresh debtor with a link, the identity check, axe-core
on a page, the portal's and the payer pages' wording, the portal lines of the timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from tests.browser.conftest import screenshot

PHONE = {"width": 390, "height": 844}
POSTCODE = "69003"


@dataclass(frozen=True)
class Account:
    """A debtor reached through the portal: the link's path, the debtor and invoice ids."""

    path: str
    debtor_id: int
    invoice_ids: list[int]


def new_account(
    live_server: dict[str, Any],
    language: str,
    *,
    amounts: tuple[int, ...] = (48_000, 12_990),
    days_late: tuple[int, ...] = (25, 5),
    channels: tuple[str, ...] = ("sms",),
    **columns: Any,
) -> Account:
    """A debtor of its own (an action on one account never changes another test's), with
    overdue invoices and a portal link."""
    from relance.portal.access import issue_access
    from tests.factories import make_debtor, make_invoice

    with live_server["factory"].begin() as session:
        debtor = make_debtor(
            session, language=language, postcode=POSTCODE, channels=channels, **columns
        )
        invoices = [
            make_invoice(session, debtor, amount, due=date.today() - timedelta(days=late))
            for amount, late in zip(amounts, days_late, strict=True)
        ]
        _, url = issue_access(session, debtor)
        return Account(
            url.removeprefix(live_server["url"]), debtor.id, [inv.id for inv in invoices]
        )


def verify(page: Any, base: str, path: str) -> None:
    """Open the link and pass the identity check (the billing postcode)."""
    page.goto(base + path)
    page.fill("#answer", POSTCODE)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{path}")


def axe(page: Any, name: str, screens: Path, context: str | None = None) -> None:
    """Screenshot the page, then axe-core: no serious or critical violation."""
    from axe_playwright_python.sync_playwright import Axe

    screenshot(page, screens / f"{name}.png")
    results = Axe().run(page, context=context)
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"{name}: {bad}"


def t(language: str, key: str, **values: Any) -> str:
    """The portal's wording as `text()` reads it (its no-break spaces as plain ones)."""
    from portal.pages import translate
    from relance.settings import get_settings

    settings = get_settings()
    defaults = {"creditor": settings.creditor_name, "phone": settings.creditor_phone}
    return words(translate(language, key, **{**defaults, **values}))


def payer_t(language: str, key: str, **values: Any) -> str:
    """The payer pages' wording (payment link, sandbox checkout), as `text()` reads it."""
    from payment_links.pages import translate

    return words(translate(language, key, **values))


def said(page: Any, role: str = "alert") -> str:
    """What the page's alert (or status) message says, as `text()` reads it."""
    return words(page.get_by_role(role).inner_text())


def words(value: str) -> str:
    """Runs of white space (non-breaking ones too, which Babel puts in amounts) as one space."""
    return " ".join(value.split())


def text(page: Any, selector: str = "main") -> str:
    return words(page.inner_text(selector))


def timeline(live_server: dict[str, Any], debtor_id: int) -> list[tuple[str, str]]:
    """(portal action, body) of every portal line in the debtor's conversation, oldest first."""
    from relance.db.models import Conversation, Message

    with live_server["factory"]() as session:
        rows = session.execute(
            select(Message.extra, Message.body)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Conversation.debtor_id == debtor_id, Message.channel == "portal")
            .order_by(Message.id)
        ).all()
    return [((extra or {}).get("portal_action", ""), body) for extra, body in rows]
