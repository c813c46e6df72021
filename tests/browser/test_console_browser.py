"""End-to-end in headless Chromium: collector flow, admin plan-limit edit, role separation,
and a screenshot of every page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from relance.db.models import Conversation, Debtor, Handoff, Message
from relance.policy import service as policy_service
from tests.browser.conftest import screenshot, sign_in
from tests.browser.seed import ADMIN, COLLECTOR, PASSWORD

pytestmark = pytest.mark.browser


def bot_counter_offer(debtor_id: int, installments: int = 6) -> dict[str, Any]:
    """Run the bot's own plan action (as the action server would) for a debtor asking for
    `installments` monthly payments; returns the response it names and its variables."""
    from rasa_sdk import Tracker
    from rasa_sdk.executor import CollectingDispatcher

    from actions.plans import ActionEvaluatePlan

    tracker = Tracker(
        sender_id=f"debtor-{debtor_id}",
        slots={
            "debtor_id": str(debtor_id),
            "plan_installments": installments,
            "plan_frequency": "monthly",
            "language": "fr",
        },
        latest_message={
            "text": f"je voudrais payer en {installments} fois",
            "intent": {},
            "entities": [],
        },
        events=[],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )
    dispatcher = CollectingDispatcher()
    ActionEvaluatePlan().run(dispatcher, tracker, {})
    assert len(dispatcher.messages) == 1, dispatcher.messages
    return dispatcher.messages[0]


def test_collector_takes_over_replies_and_hands_back(
    page: Any, live_server: dict[str, Any], screens_dir: Path
) -> None:
    base, ids = live_server["url"], live_server["ids"]
    sign_in(page, base, COLLECTOR, PASSWORD)
    assert page.url == f"{base}/console/"
    rows = page.locator("#inbox-rows tr")
    # Highest priority first: John Miller (P3), the bakery (P2), Camille (P1).
    assert rows.nth(0).inner_text().startswith("P3")
    assert "John Miller" in rows.nth(0).inner_text()

    page.click("text=Camille Petit")
    page.wait_for_url(f"**/console/conversations/{ids['conv-C-1001']}")
    assert page.locator("#mode").inner_text() == "Bot is talking"
    page.click("button:has-text('Take over')")
    page.wait_for_selector("text=You now own this conversation")
    assert page.locator("#mode").inner_text() == "Collector is talking"

    page.fill("textarea[name=text]", "Bonjour Camille, je suis Claire. Regardons ensemble.")
    page.click("button:has-text('Send reply')")
    page.wait_for_selector("text=Reply sent.")
    page.wait_for_selector(".msg.author-collector >> text=je suis Claire")
    assert live_server["gateway"].sent[-1]["text"].startswith("Bonjour Camille, je suis Claire")
    screenshot(page, screens_dir / "03b-conversation-taken-over.png")

    page.click("button:has-text('Hand back to bot')")
    page.wait_for_selector("text=Conversation handed back to the bot.")
    assert page.locator("#mode").inner_text() == "Bot is talking"
    with live_server["factory"]() as session:
        conversation = session.get(Conversation, ids["conv-C-1001"])
        assert conversation is not None and conversation.mode == "bot"
        handoff = session.scalars(
            select(Handoff).where(Handoff.conversation_id == conversation.id)
        ).one()
        assert handoff.status == "closed"
        authors = list(
            session.scalars(
                select(Message.author)
                .where(Message.conversation_id == conversation.id)
                .order_by(Message.id.desc())
                .limit(2)
            )
        )
    assert authors == ["bot", "collector"]  # the bot resumed in context after the hand-back
    assert ("intent", f"debtor-{ids['C-1001']}", "EXTERNAL_resume") in live_server["rasa"].calls


def test_admin_edits_a_plan_limit_and_it_is_active(page: Any, live_server: dict[str, Any]) -> None:
    base, ids = live_server["url"], live_server["ids"]
    sign_in(page, base, ADMIN, PASSWORD)
    page.goto(f"{base}/console/admin/policy?tab=preview&debtor_id={ids['C-1001']}")
    limits = page.locator("text=Max installments").locator("xpath=..")
    assert limits.locator("strong").inner_text() == "3"

    before = bot_counter_offer(ids["C-1001"])
    assert before["response"] == "utter_plan_counter_offer" and before["installments"] == 3

    page.goto(f"{base}/console/admin/policy?tab=limits")
    page.fill("input[name='band-0-max_installments']", "5")
    page.fill("input[name='band-0-max_duration_days']", "150")
    page.fill("input[name=comment]", "Consumers under 500 € get up to 5 installments")
    page.click("button:has-text('Save plan limits')")
    page.wait_for_selector("text=Policy saved and active now.")
    assert page.input_value("input[name='band-0-max_installments']") == "5"

    page.goto(f"{base}/console/admin/policy?tab=preview&debtor_id={ids['C-1001']}")
    assert (
        page.locator("text=Max installments").locator("xpath=..").locator("strong").inner_text()
        == "5"
    )
    with live_server["factory"]() as session:
        debtor = session.get(Debtor, ids["C-1001"])
        assert debtor is not None
        assert policy_service.plan_limits_for(session, debtor, 32_000).max_installments == 5
    # The bot's next counter-offer follows the new limit, without a restart.
    after = bot_counter_offer(ids["C-1001"])
    assert after["response"] == "utter_plan_counter_offer" and after["installments"] == 5

    page.goto(f"{base}/console/admin/policy?tab=limits")
    page.fill("input[name='band-0-max_installments']", "1")
    page.click("button:has-text('Save plan limits')")
    page.wait_for_selector("text=Not saved: fix these first.")
    assert "max_installments" in page.locator(".alert.error").inner_text()


def test_collector_cannot_open_admin_pages(page: Any, live_server: dict[str, Any]) -> None:
    base = live_server["url"]
    sign_in(page, base, COLLECTOR, PASSWORD)
    assert page.locator("nav >> text=Policy").count() == 0
    for path in ("/console/admin/policy", "/console/admin/wording", "/console/admin/audit"):
        response = page.goto(f"{base}{path}")
        assert response is not None and response.status == 403
        assert page.locator("h1").inner_text() == "Admins only"


PAGES = [
    ("01-login", None, "/console/login"),
    ("02-inbox", COLLECTOR, "/console/"),
    ("03-conversation", COLLECTOR, "/console/conversations/{conv-B-2002}"),
    ("04-conversation-voice", COLLECTOR, "/console/conversations/{conv-C-1003}"),
    ("05-dashboard", ADMIN, "/console/dashboard"),
    ("06-policy-limits", ADMIN, "/console/admin/policy?tab=limits"),
    ("07-policy-contact", ADMIN, "/console/admin/policy?tab=contact"),
    ("08-policy-document", ADMIN, "/console/admin/policy?tab=document"),
    ("09-policy-preview", ADMIN, "/console/admin/policy?tab=preview&debtor_id={B-2002}"),
    ("10-policy-versions", ADMIN, "/console/admin/policy/versions"),
    ("11-policy-diff", ADMIN, "/console/admin/policy/diff?old=0"),
    ("12-wording", ADMIN, "/console/admin/wording"),
    ("13-wording-edit", ADMIN, "/console/admin/wording/edit/utter_collector_payment_link"),
    ("14-audit", ADMIN, "/console/admin/audit"),
    ("15-forbidden", COLLECTOR, "/console/admin/policy"),
]


def test_screenshot_every_page(
    browser: Any, live_server: dict[str, Any], screens_dir: Path
) -> None:
    base, ids = live_server["url"], live_server["ids"]
    contexts: dict[str | None, Any] = {}
    for name, who, path in PAGES:
        if who not in contexts:
            context = browser.new_context(viewport={"width": 1440, "height": 1000})
            page = context.new_page()
            if who:
                sign_in(page, base, who, PASSWORD)
            contexts[who] = page
        page = contexts[who]
        response = page.goto(base + path.format(**ids))
        assert response is not None
        assert response.status == (403 if name == "15-forbidden" else 200), name
        target = screens_dir / f"{name}.png"
        screenshot(page, target)
        assert target.stat().st_size > 10_000, name
    for page in contexts.values():
        page.context.close()


def test_inbox_updates_live_when_a_debtor_writes(page: Any, live_server: dict[str, Any]) -> None:
    base, ids = live_server["url"], live_server["ids"]
    sign_in(page, base, COLLECTOR, PASSWORD)
    row = page.locator("#inbox-rows tr", has_text="Boulangerie Lefèvre SARL")
    assert "new" not in row.inner_text()
    with live_server["factory"].begin() as session:
        session.add(
            Message(
                conversation_id=ids["conv-B-2002"],
                direction="inbound",
                channel="whatsapp",
                author="debtor",
                status="held",
                body="Vous avez reçu mon bon de livraison ?",
            )
        )
    # No reload: the HTMX poll (every 5 s) brings the new message in.
    page.wait_for_selector(
        "#inbox-rows tr:has-text('Vous avez reçu mon bon de livraison')", timeout=12_000
    )
    assert "1 new" in row.inner_text()
