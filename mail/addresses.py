"""Address helpers of the mail edge (the validation itself is the core's, shared with the import)."""

from __future__ import annotations

from email.utils import getaddresses

from relance.contacts.email_address import normalise_email
from relance.errors import BadInput


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower()


def first_address(header_value: str | None) -> str | None:
    """The first valid address of a From/To header, normalised; None when there is none."""
    for _, address in getaddresses([header_value or ""]):
        try:
            return normalise_email(address)
        except BadInput:
            continue
    return None
