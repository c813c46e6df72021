"""A failed automatic payment is explained beside its instalment on the portal, in the words of
the message the debtor got for it (French and English, a card's or a debit's), with what to do:
pay it now. Only the latest attempt counts, and only for an unpaid instalment of a running plan."""

from __future__ import annotations

import html
from datetime import date, timedelta

import pytest
from sqlalchemy.orm import Session

from portal.pages import charge_failure, failure_clause, translate
from relance.followups.charges import FAILURE_REASONS, UNDESCRIBED
from relance.nlg.catalogue import sample_contexts
from relance.nlg.renderer import render
from relance.nlg.templates_store import bundled_templates
from relance.portal import service
from tests.factories import (
    make_debtor,
    make_installment_charge,
    make_invoice,
    make_mandate,
    make_plan,
)
from tests.portal import test_card_on_file as cards
from tests.portal import test_direct_debit as sepa
from tests.portal.conftest import make_portal, sign_in

REASONS = sorted(set(FAILURE_REASONS.values()) | {UNDESCRIBED})
MESSAGES = {
    "card": "utter_installment_charge_failed",
    "sepa_debit": "utter_installment_debit_failed",
}


def _words(text: str) -> str:
    """Runs of white space (the portal's no-break spaces before French colons too) as one."""
    return " ".join(html.unescape(text).split())


def _message(kind: str, reason: str, language: str) -> str:
    response = MESSAGES[kind]
    context = sample_contexts(response)[1] | {"failure_reason": reason}
    return render(
        bundled_templates(), response, language=language, channel="sms", variables=context
    )


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("kind", sorted(MESSAGES))
@pytest.mark.parametrize("reason", REASONS)
def test_the_portal_says_what_the_message_said(kind, reason, language):
    """Every reason a failure can be given, for a card and for a debit: the portal's words are
    the message's, to the full stop (a reason the message does not name is its 'no reason')."""
    clause = _words(failure_clause(language, kind, reason))
    assert f" {clause}." in _words(_message(kind, reason, language))
    sentence = _words(charge_failure(language, kind, reason))
    assert sentence.endswith(f" {clause}.")


@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_refused_debit_is_explained_beside_its_instalment(
    client, db, gateway, sandbox_payments, language
):
    """The whole way: a mandate whose debits the bank refuses (the sandbox's `fail`), the
    worker's pass, then the overview and the text message say the same reason."""
    portal = make_portal(db, language=language)
    csrf = sign_in(client, portal)
    plan = sepa._accept_plan(client, db, portal, csrf)
    page = sepa._mandate_page(client, portal, plan, csrf)
    client.post(page.split("?")[0], data={"iban": sepa.IBAN, "outcome": "fail"})
    first, _ = sepa._charge_first(db, plan)
    assert first.status != "paid"

    home = _words(client.get(portal.path).text)

    clause = _words(failure_clause(language, "sepa_debit", "insufficient_funds"))
    said = _words(charge_failure(language, "sepa_debit", "insufficient_funds"))
    assert f"{said} {_words(translate(language, 'charge_failed_next'))}" in home
    assert any(f" {clause}." in _words(text) for text in gateway.texts_for(portal.debtor))
    # The button to pay it now, plainly (not "now rather than on its date": that date is gone).
    assert f">{translate(language, 'pay_installment', seq=1)}</button>" in home
    assert translate(language, "pay_installment_now", seq=1) not in home
    assert f'aria-describedby="failure-{first.id}"' in home
    assert home.count(clause) == 1  # beside the first instalment only


def test_a_declined_card_is_explained_beside_its_instalment(client, db, gateway, sandbox_payments):
    portal = cards._portal(db, language="en", country="US", currency="USD")
    csrf = sign_in(client, portal)
    plan = cards._accept_plan(client, db, portal, csrf)
    cards._give_card(client, cards._card_page(client, portal, plan, csrf), cards.DECLINING_CARD)
    first, _ = cards._charge_first(db, plan)
    assert first.status != "paid"

    home = _words(client.get(portal.path).text)

    said = "The card payment for this instalment did not go through: your card was declined by its bank."
    assert f"{said} Pay it now with the button below." in home
    assert any(said.split("instalment ")[1] in _words(t) for t in gateway.texts_for(portal.debtor))
    assert ">Pay instalment 1</button>" in home


def _plan_with_a_refused_debit(db: Session, *, plan_status: str = "active"):
    debtor = make_debtor(db, language="fr")
    invoice = make_invoice(db, debtor, 40_000, due=date.today() - timedelta(days=40))
    plan = make_plan(db, debtor, [20_000, 20_000], invoices=[invoice], status=plan_status)
    mandate = make_mandate(db, debtor, plan)
    first = plan.installments[0]
    make_installment_charge(db, first, mandate, status="failed", failure_code="account_closed")
    db.flush()
    return debtor, plan, mandate, first


def test_only_the_latest_attempt_of_an_unpaid_instalment_of_a_running_plan_counts(db):
    debtor, plan, _, first = _plan_with_a_refused_debit(db)
    failures = service.charge_failures(db, [plan])
    assert failures == {first.id: service.ChargeFailure("sepa_debit", "account_closed")}

    # A new mandate's debit under way: nothing failed to explain any more.
    make_installment_charge(db, first, make_mandate(db, debtor, plan), attempt=2)
    assert service.charge_failures(db, [plan]) == {}

    _, paid_plan, _, paid_first = _plan_with_a_refused_debit(db)
    paid_first.status, paid_first.paid_minor = "paid", paid_first.amount_minor
    assert service.charge_failures(db, [paid_plan]) == {}

    _, cancelled, _, _ = _plan_with_a_refused_debit(db, plan_status="cancelled")
    assert service.charge_failures(db, [cancelled]) == {}
