"""The policy preview shows each stage claiming what the reminder would claim on its date: the
overdue invoice, not the sum of every open invoice (an invoice due next month included)."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.orm import Session

from console.preview import policy_preview
from relance.nlg.templates_store import bundled_templates
from relance.policy.service import active_policy
from tests.factories import make_debtor, make_invoice


def test_each_stage_states_the_amount_due_by_its_date_not_the_whole_balance(db: Session) -> None:
    today = date.today()
    debtor = make_debtor(db, language="fr")
    make_invoice(db, debtor, 10_000, number="F-PAST", due=today - timedelta(days=10))
    make_invoice(db, debtor, 50_000, number="F-LATER", due=today + timedelta(days=40))
    preview = policy_preview(db, active_policy(db), bundled_templates(), debtor)
    stages = {s.key: s.text.replace("\xa0", " ") for s in preview.stages}
    assert "F-PAST" in stages["pre_due"] and "F-LATER" not in stages["pre_due"]
    friendly = stages["friendly"]
    assert "100,00 €" in friendly and "F-LATER" not in friendly, friendly
    assert "600,00" not in " ".join(stages.values())
