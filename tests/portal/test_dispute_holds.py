"""A dispute raised on the portal on an invoice a running plan covers: the notice says what it
does to the plan (paused, or its last instalments), the instalments it holds say so and are not
offered for payment; upheld, an instalment reduced to nothing says it is no longer owed instead
of showing "0,00 €" as paid."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from portal.pages import translate
from relance.db.models import Dispute
from relance.disputes.service import decide_dispute
from tests.factories import make_plan
from tests.portal.conftest import make_portal, sign_in

LANGS = pytest.mark.parametrize("language", ["fr", "en"])


def _words(text: str) -> str:
    return " ".join(html.unescape(text).split())


def _instalment(page: str, seq: int, language: str) -> str:
    """The text of instalment `seq`'s line in the plan's list (its tag, hints and button)."""
    word = "Échéance" if language == "fr" else "Instalment"
    found = re.search(rf"<li>\s*{word} {seq}\b(.*?)</li>", html.unescape(page), re.S)
    assert found, f"no line for instalment {seq}"
    return found.group(0)


def _dispute(client, portal, csrf, invoice):
    return client.post(
        f"{portal.path}/dispute",
        data={
            "invoice_id": str(invoice.id),
            "reason": "not_received",
            "details": "never delivered",
            "csrf_token": csrf,
        },
    )


@LANGS
def test_a_dispute_on_one_invoice_of_a_plan_holds_its_last_instalments(client, db, language):
    portal = make_portal(db, language=language, amounts=(12_000, 30_000))
    csrf = sign_in(client, portal)
    plan = make_plan(db, portal.debtor, [12_000, 15_000, 15_000], invoices=portal.invoices)

    page = _dispute(client, portal, csrf, portal.invoices[1])

    assert page.status_code == 200
    assert _words(translate(language, "done_dispute_plan_part")) in _words(page.text)
    db.expire_all()
    dispute = db.scalars(select(Dispute).where(Dispute.debtor_id == portal.debtor.id)).one()
    assert [inst.hold_id for inst in plan.installments] == [None, dispute.id, dispute.id]
    held = translate(language, "installment_held")
    first, second, third = (_instalment(page.text, seq, language) for seq in (1, 2, 3))
    assert held not in first and "/pay" in first  # uncontested: due, and payable
    for line in (second, third):
        assert held in line and "/pay" not in line


@LANGS
def test_a_dispute_on_the_plans_only_invoice_pauses_the_plan(client, db, language):
    portal = make_portal(db, language=language, amounts=(30_000,))
    csrf = sign_in(client, portal)
    make_plan(db, portal.debtor, [15_000, 15_000], invoices=portal.invoices)

    page = _dispute(client, portal, csrf, portal.invoices[0])

    text = _words(page.text)
    assert _words(translate(language, "done_dispute_plan")) in text
    assert text.count(translate(language, "installment_held")) == 2
    assert "/installments/" not in page.text  # nothing offered for payment


@LANGS
def test_a_dispute_without_a_plan_keeps_the_usual_notice(client, db, language):
    portal = make_portal(db, language=language)
    csrf = sign_in(client, portal)

    page = _dispute(client, portal, csrf, portal.invoices[0])

    assert _words(translate(language, "done_dispute")) in _words(page.text)


@LANGS
def test_an_instalment_an_upheld_dispute_cancelled_is_shown_as_no_longer_owed(client, db, language):
    portal = make_portal(db, language=language, amounts=(12_000, 30_000))
    csrf = sign_in(client, portal)
    plan = make_plan(db, portal.debtor, [12_000, 15_000, 15_000], invoices=portal.invoices)
    _dispute(client, portal, csrf, portal.invoices[1])
    db.expire_all()
    dispute = db.scalars(select(Dispute).where(Dispute.debtor_id == portal.debtor.id)).one()
    decide_dispute(db, dispute, upheld=True, note="never delivered", actor="collector:ann")
    assert [i.amount_minor for i in plan.installments] == [12_000, 0, 0]

    page = client.get(portal.path).text

    for seq in (2, 3):
        line = _instalment(page, seq, language)
        assert translate(language, "installment_waived") in line
        assert re.search(r"\d[,.]\d\d", line) is None, line  # no amount: not "0,00 €"
        assert translate(language, "installment_paid") not in line
    assert "/pay" in _instalment(page, 1, language)
