"""The debtor's message after a failed charge names the reason in plain words, French and
English: every failure code the collector's view describes has a reason for the debtor, each
reason has its own sentence in both failure messages, and a problem on our side is never blamed
on the debtor's bank."""

from __future__ import annotations

import logging

import pytest

from console.payment_methods import FAILURE_LABELS
from relance.followups import charges
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


CARD_ONLY = {
    "card_declined",
    "card_expired",
    "authentication",
    "card_details",
    "card_unsupported",
    "bank_unavailable",
}
# What each message names: a debit every bank reason, a card what a card charge comes back with.
NAMED = {
    "utter_installment_debit_failed": set(REASONS) - CARD_ONLY - {UNDESCRIBED},
    "utter_installment_charge_failed": CARD_ONLY
    | {"insufficient_funds", "over_limit", "ask_bank", "our_side"},
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


# Stripe's decline codes (docs.stripe.com/declines/codes) as a `card_declined` error carries
# them, and what the debtor's card message then says.
DECLINES = {
    "insufficient_funds": {
        "fr": "la provision du compte était insuffisante",
        "en": "not enough funds",
    },
    "expired_card": {"fr": "votre carte a expiré", "en": "your card has expired"},
    "incorrect_cvc": {"fr": "cryptogramme", "en": "security code"},
    "do_not_honor": {"fr": "vous demande de la contacter", "en": "asks you to contact it"},
    "authentication_required": {"fr": "confirmer le paiement", "en": "confirm the payment"},
    "card_velocity_exceeded": {"fr": "plafond de votre carte", "en": "above your card's limit"},
    "currency_not_supported": {"fr": "sa devise", "en": "its type or currency"},
    "issuer_not_available": {"fr": "n'a pas pu le traiter", "en": "could not process it"},
    # Stripe: a card reported lost or stolen is told as a generic decline, never as such.
    "lost_card": {"fr": "refusée par sa banque", "en": "declined by its bank"},
    "stolen_card": {"fr": "refusée par sa banque", "en": "declined by its bank"},
}


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("decline_code", sorted(DECLINES))
def test_a_card_decline_code_is_recorded_and_told_in_words(decline_code, language):
    code = charges.failure_code("card_declined", decline_code)
    text = _text(RESPONSES[1], failure_reason(code), language)
    assert code == decline_code
    assert DECLINES[decline_code][language] in text
    assert not {"perdue", "volée", "lost", "stolen"} & set(text.replace(",", " ").split())


def test_the_issuers_reason_wins_over_the_generic_code_only_when_it_is_worded(caplog):
    assert charges.failure_code("card_declined", "lost_card") == "lost_card"
    assert charges.failure_code("expired_card", None) == "expired_card"  # no decline_code
    assert charges.failure_code("account_closed") == "account_closed"  # a SEPA return
    with caplog.at_level(logging.WARNING, logger="relance.followups.charges"):
        assert charges.failure_code("card_declined", "new_issuer_code") == "card_declined"
    assert "new_issuer_code" in caplog.text
    assert charges.failure_code(None, "new_issuer_code") == "new_issuer_code"
    assert charges.failure_code(None, None) is None
