"""The one place a card number is typed into a Relance page: the sandbox's card page (with Stripe
it is typed on Stripe's page). Only the sandbox's test numbers are accepted there, checked by
their length and Luhn sum; the digits go no further than the simulated payment method, which
keeps the outcome and the last four."""

from __future__ import annotations

from relance.errors import BadInput

MAX_CARD_LENGTH = 23  # 19 digits, with the spaces people type in groups of four


def card_digits(text: str) -> str:
    """The digits of a plausible card number (12 to 19 digits, Luhn sum right); BadInput
    otherwise."""
    digits = text.replace(" ", "").replace("-", "")
    if len(text) > MAX_CARD_LENGTH or not digits.isdigit() or not 12 <= len(digits) <= 19:
        raise BadInput("invalid_card", "this is not a valid card number")
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    if total % 10:
        raise BadInput("invalid_card", "this is not a valid card number")
    return digits
