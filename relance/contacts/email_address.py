"""E-mail addresses: validated and normalised once, at import, so lookups compare like with like.

`email-validator` checks the syntax (RFC 5321/5322, internationalised domains) without any DNS
query: an import must not depend on the network, and a mailbox's existence is learnt from
bounces (the mail edge marks the contact `bounced`). The normal form lower-cases the whole
address: the local part is case-sensitive in theory, case-insensitive at every provider debtors
use, and a reply from `Camille@…` must find the contact imported as `camille@…`.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from relance.errors import BadInput


def normalise_email(address: str) -> str:
    """The stored form of an address, or BadInput with the validator's reason."""
    try:
        checked = validate_email(address.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise BadInput(
            "invalid_email", f"{address!r} is not a valid e-mail address: {exc}"
        ) from exc
    return checked.normalized.lower()
