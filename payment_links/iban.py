"""The one place an IBAN is typed into a Relance page (the sandbox mandate page; with Stripe it
is typed on Stripe's page): checked with schwifty, and reduced at once to its last four
characters, which is all Relance keeps."""

from __future__ import annotations

from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from relance.errors import BadInput

MAX_IBAN_LENGTH = 42  # 34 characters, with the spaces people type in groups of four


def sepa_last4(text: str) -> str:
    """The last four characters of a valid IBAN of the SEPA zone; BadInput otherwise."""
    if len(text) > MAX_IBAN_LENGTH:
        raise BadInput("invalid_iban", "this is not a valid IBAN")
    try:
        iban = IBAN(text)
    except SchwiftyException as exc:
        raise BadInput("invalid_iban", "this is not a valid IBAN") from exc
    if not iban.in_sepa_zone:
        raise BadInput("iban_outside_sepa", "this bank account is outside the SEPA zone")
    return iban.compact[-4:]
