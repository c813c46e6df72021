"""Letters to post, in headless Chromium: the queue, the PDF link, marking a letter posted with
HTMX (the row swaps in place), and the Posted tab. Screenshots: 16-letters*.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from relance.db.models import Debtor, Invoice, Letter
from relance.letters.service import create_formal_notice
from tests.browser.conftest import screenshot, sign_in
from tests.browser.seed import COLLECTOR, PASSWORD

pytestmark = pytest.mark.browser


def _queue_letters(live_server: dict[str, Any], out_dir: Path) -> dict[str, int]:
    """Two real mises en demeure (PDF rendered), one with two invoices."""
    ids = live_server["ids"]
    letters: dict[str, int] = {}
    with live_server["factory"].begin() as session:
        bakery = session.get(Debtor, ids["B-2002"])
        first = session.scalars(select(Invoice).where(Invoice.debtor_id == bakery.id)).first()
        session.add(
            Invoice(
                debtor_id=bakery.id,
                number="F-2026-4190",
                amount_minor=212_040,
                issue_date=first.issue_date,
                due_date=first.due_date,
                description="Livraisons",
            )
        )
        session.flush()
        for number in ("B-2002", "B-2004"):
            debtor = session.get(Debtor, ids[number])
            debtor.address_line = "14 rue Oberkampf"
            letter = create_formal_notice(
                session,
                debtor,
                None,
                payment_url="https://pay.relance.test/pay/abc",
                out_dir=out_dir,
            )
            letters[number] = letter.id
    return letters


def test_collector_posts_a_letter_with_its_tracking_number(
    page: Any, live_server: dict[str, Any], screens_dir: Path, tmp_path: Path
) -> None:
    base = live_server["url"]
    letters = _queue_letters(live_server, tmp_path)
    sign_in(page, base, COLLECTOR, PASSWORD)
    page.click("nav >> text=Letters")
    page.wait_for_url(f"{base}/console/letters")
    bakery = page.locator(f"#letter-{letters['B-2002']}")
    text = bakery.inner_text()
    assert "Boulangerie Lefèvre SARL" in text and "F-2026-4101" in text and "F-2026-4190" in text
    screenshot(page, screens_dir / "16-letters-to-post.png")

    with page.expect_download() as download:
        bakery.locator("text=PDF").click()
    assert download.value.suggested_filename == f"MED-{letters['B-2002']:06d}.pdf"

    bakery.locator("input[name=tracking_number]").fill("1A 0012 3456 789")
    bakery.locator("button:has-text('Mark posted')").click()
    page.wait_for_selector(f"#letter-{letters['B-2002']} code.tracking")
    assert "1A00123456789" in page.locator(f"#letter-{letters['B-2002']}").inner_text()
    assert page.url == f"{base}/console/letters"  # swapped in place, no page load
    tabs = page.locator("#letter-tabs").inner_text()  # counts follow (out-of-band swap)
    assert "To post 2" in " ".join(tabs.split()) and "Posted 1" in " ".join(tabs.split())
    workshop = page.locator(f"#letter-{letters['B-2004']}")
    workshop.locator("input[name=tracking_number]").fill("1A/0012/3456")
    workshop.locator("button:has-text('Mark posted')").click()
    page.wait_for_selector(f"#letter-{letters['B-2004']} .field-error")
    assert "8 to 20 letters and digits" in workshop.inner_text()
    screenshot(page, screens_dir / "16b-letters-just-posted.png")
    with live_server["factory"]() as session:
        letter = session.get(Letter, letters["B-2002"])
        assert (letter.status, letter.tracking_number, letter.posted_by) == (
            "sent",
            "1A00123456789",
            f"user:{COLLECTOR}",
        )

    page.click("text=Posted")
    page.wait_for_url(f"{base}/console/letters?status=sent")
    assert "1A00123456789" in page.locator("table.letters").inner_text()
    screenshot(page, screens_dir / "16c-letters-posted.png")
