"""In headless Chromium: the conversation page lists a running plan's instalments and marks the
one an open dispute holds ("on hold — dispute LIT-…"); axe-core finds no serious or critical
violation in the plans card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from relance.db.models import Invoice
from relance.disputes.service import create_dispute
from tests.browser.conftest import sign_in
from tests.browser.portal_support import axe
from tests.browser.seed import COLLECTOR, PASSWORD
from tests.factories import make_invoice, make_plan

pytestmark = pytest.mark.browser


def test_the_held_instalment_is_marked_on_the_conversation_page(
    page: Any, live_server: dict[str, Any], screens_dir: Path
) -> None:
    base, ids = live_server["url"], live_server["ids"]
    with live_server["factory"].begin() as session:
        debtor_id = ids["C-1001"]
        (kept,) = session.scalars(
            select(Invoice).where(Invoice.debtor_id == debtor_id, Invoice.status == "open")
        )  # 320 €
        debtor = kept.debtor
        contested = make_invoice(session, debtor, 16_000)
        make_plan(session, debtor, [16_000, 16_000, 16_000], invoices=[kept, contested])
        reference = create_dispute(
            session,
            debtor,
            reason="defective",
            details="Écran fissuré à la livraison",
            invoice_id=contested.id,
            actor="debtor",
        ).reference

    sign_in(page, base, COLLECTOR, PASSWORD)
    page.goto(f"{base}/console/conversations/{ids['conv-C-1001']}")

    lines = page.locator("li.instalment")
    assert lines.count() == 3
    held = page.locator("li.instalment .tag.held")
    assert held.count() == 1
    assert held.first.is_visible()
    assert held.first.inner_text() == f"on hold — dispute {reference}"
    assert "No. 3" in lines.nth(2).inner_text() and lines.nth(0).locator(".held").count() == 0
    lines.nth(2).scroll_into_view_if_needed()
    axe(page, "console-plan-holds", screens_dir, context="li.instalment")
