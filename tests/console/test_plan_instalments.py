"""The payment plans on the conversation page list their instalments, and say which an open
dispute holds (`relance/plans/holds.py`): the follow-up pass leaves those alone until the
collector decides the dispute, and the collector deciding it sees what the decision releases.
The debtor's portal said so; the console showed only the plan's total."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import Invoice
from relance.disputes.service import create_dispute, decide_dispute
from tests.factories import make_handed_off_case, make_invoice, make_plan


def _instalment(page: str, seq: int) -> str:
    """The text of instalment `seq`'s line in the plans card, tags removed."""
    lines = re.findall(r'<li class="instalment"[^>]*>(.*?)</li>', page, re.S)
    texts = [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", line)).split()) for line in lines]
    found = [text for text in texts if text.startswith(f"No. {seq} ")]
    assert len(found) == 1, f"no line for instalment {seq}: {texts}"
    return found[0]


def test_the_plan_lists_its_instalments_and_the_dispute_that_holds_them(
    as_collector: TestClient, db: Session
) -> None:
    owner, conv, _ = make_handed_off_case(db)
    (kept,) = db.scalars(select(Invoice).where(Invoice.debtor_id == owner.id))  # 100 €
    contested = make_invoice(db, owner, 5_000)
    make_plan(db, owner, [5_000, 5_000, 5_000], invoices=[kept, contested])
    dispute = create_dispute(
        db, owner, reason="defective", details="cassé", invoice_id=contested.id, actor="debtor"
    )

    page = as_collector.get(f"/console/conversations/{conv.id}").text

    first, second, third = (_instalment(page, seq) for seq in (1, 2, 3))
    assert "€50.00" in first and "on hold" not in first
    assert "on hold" not in second
    assert f"on hold — dispute {dispute.reference}" in third

    decide_dispute(db, dispute, upheld=False, note="working", actor="collector:ann")
    page = as_collector.get(f"/console/conversations/{conv.id}").text
    assert "on hold" not in _instalment(page, 3)
