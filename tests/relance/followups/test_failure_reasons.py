"""The debtor's message after a failed charge names the reason in plain words, French and
English: every failure code the collector's view describes has a reason for the debtor, each
reason has its own sentence in both failure messages, and a problem on our side is never blamed
on the debtor's bank."""

from __future__ import annotations

import logging

import pytest

from console.payment_methods import FAILURE_LABELS
from relance.followups.charges import FAILURE_REASONS, UNDESCRIBED, failure_reason
from relance.nlg.catalogue import sample_contexts
from relance.nlg.renderer import render
from relance.nlg.templates_store import bundled_templates

REASONS = sorted(set(FAILURE_REASONS.values()))
RESPONSES = ("utter_installment_debit_failed", "utter_installment_charge_failed")
BANK_REASONS = {
    "insufficient_funds": {
        "fr": "la provision du compte était insuffisante",
        "en": "there were not enough funds on the account",
    },
    "account_closed": {"fr": "le compte est clôturé", "en": "the account is closed"},
    "account_blocked": {
        "fr": "le compte est bloqué pour les prélèvements",
        "en": "the account is blocked for direct debits",
    },
}


def _text(response: str, reason: str, language: str) -> str:
    context = sample_contexts(response)[1] | {"failure_reason": reason}
    return render(
        bundled_templates(), response, language=language, channel="sms", variables=context
    )


def test_every_code_the_collector_reads_in_words_has_a_reason_for_the_debtor():
    assert set(FAILURE_LABELS) <= set(FAILURE_REASONS)


CARD_ONLY = {"card_declined", "card_expired", "authentication"}
# What each message names: a debit every bank reason, a card what a card charge comes back with.
NAMED = {
    "utter_installment_debit_failed": set(REASONS) - CARD_ONLY - {UNDESCRIBED},
    "utter_installment_charge_failed": CARD_ONLY | {"insufficient_funds", "over_limit", "our_side"},
}


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("response", RESPONSES)
def test_each_reason_has_its_own_sentence(response, language):
    """Each reason the message names reads differently from the others and from 'no reason';
    any other falls to 'no reason', never to another reason's words."""
    texts = {reason: _text(response, reason, language) for reason in REASONS}
    named = NAMED[response]
    assert len({texts[r] for r in named} | {texts[UNDESCRIBED]}) == len(named) + 1
    assert all(texts[r] == texts[UNDESCRIBED] for r in set(REASONS) - named)


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("reason", sorted(BANK_REASONS))
def test_the_debit_message_names_the_banks_reason(reason, language):
    assert BANK_REASONS[reason][language] in _text(RESPONSES[0], reason, language)


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("response", RESPONSES)
def test_a_failure_on_our_side_is_not_put_on_the_debtors_bank(response, language):
    text = _text(response, "our_side", language)
    assert "refused by your bank" not in text and "rejeté par votre banque" not in text
    assert ("de notre côté" if language == "fr" else "on our side") in text


def test_an_undescribed_code_is_logged_and_the_debtor_told_no_reason(caplog):
    with caplog.at_level(logging.WARNING, logger="relance.followups.charges"):
        assert failure_reason("some_new_code") == UNDESCRIBED
    assert "some_new_code" in caplog.text
    assert failure_reason(None) == UNDESCRIBED
