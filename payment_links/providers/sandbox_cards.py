"""Stripe's published test card numbers, as the sandbox honours them.

From Stripe's testing documentation (docs.stripe.com/testing, "Declined payments"; Radar's
"always blocked" card; and the card that "attaches to a customer but declines when charged").
Each decline carries what Stripe's `last_payment_error` carries for it: the error `code` and,
under `card_declined`, the issuer's `decline_code`. The sandbox puts them in the same signed
`payment_intent.payment_failed` (a checkout) or the same `ChargeResult` (an off-session charge)
a real Stripe decline takes, so the recording, the wording for the debtor (a lost, stolen or
fraudulent card told as a plain decline) and the code named to collectors are the real ones.

Any other number with a right Luhn sum pays, as 4242 4242 4242 4242 does (the sandbox's card
page always accepted any valid number). A card kept on file keeps the decline it stands for in
its payment method id (`key`), and its off-session charges are declined with it: Stripe's own
test mode would refuse most of these numbers when the card is saved; the sandbox keeps them so
that a demo can show every off-session decline, which Stripe has no test card for.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SandboxCard:
    """A test card: `key` names it in the pages' wording (`test_card_<key>`) and in a saved
    card's payment method id; `code` is None for a card that pays."""

    number: str
    key: str
    code: str | None = None
    decline_code: str | None = None

    @property
    def declines(self) -> bool:
        return self.code is not None

    @property
    def grouped(self) -> str:
        """The number as printed on a card, in groups of four."""
        return " ".join(self.number[i : i + 4] for i in range(0, len(self.number), 4))


PAYING = SandboxCard("4242424242424242", "ok")
GENERIC_DECLINE = SandboxCard("4000000000000002", "generic", "card_declined", "generic_decline")
# Attaches to a customer, then every charge is declined ("decline": the key the sandbox's saved
# cards have always had for it).
DECLINES_AFTER_ATTACHING = SandboxCard(
    "4000000000000341", "decline", "card_declined", "generic_decline"
)
TEST_CARDS: tuple[SandboxCard, ...] = (
    PAYING,
    GENERIC_DECLINE,
    SandboxCard("4000000000009995", "funds", "card_declined", "insufficient_funds"),
    SandboxCard("4000000000009987", "lost", "card_declined", "lost_card"),
    SandboxCard("4000000000009979", "stolen", "card_declined", "stolen_card"),
    SandboxCard("4100000000000019", "fraud", "card_declined", "fraudulent"),
    SandboxCard("4000000000000069", "expired", "expired_card"),
    SandboxCard("4000000000000127", "cvc", "incorrect_cvc"),
    SandboxCard("4000000000000119", "processing", "processing_error"),
    DECLINES_AFTER_ATTACHING,
)
_BY_NUMBER = {card.number: card for card in TEST_CARDS}
_BY_KEY = {card.key: card for card in TEST_CARDS}


def card_for(digits: str) -> SandboxCard:
    """The test card these digits are; any other (valid) number pays."""
    return _BY_NUMBER.get(digits) or SandboxCard(digits, PAYING.key)


def card_by_key(key: str | None) -> SandboxCard | None:
    """The test card a saved sandbox card's payment method id names, if any."""
    return _BY_KEY.get(key or "")
