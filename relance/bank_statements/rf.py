"""ISO 11649 "RF" creditor references, one per invoice, so a bank transfer names what it pays.

The reference is derived from the invoice id (`RF` + two check digits + `RL` + the id on 8
digits), so nothing is stored and nothing can drift: a statement line carrying `RF..RL00000042`
pays invoice 42. The check digits (ISO 7064 mod 97-10) catch a mistyped reference; validation
and formatting come from python-stdnum's `iso11649`, the check-digit computation from its
`iso7064.mod_97_10`, so only the prefix and the padding are ours.
"""

from __future__ import annotations

import re

from stdnum import iso11649
from stdnum.iso7064 import mod_97_10

PREFIX = "RL"
WIDTH = 8  # invoice ids up to 99,999,999 keep a fixed width; larger ones simply grow
# Anything that looks like an RF reference in free text: "RF18 RL00 0000 42" or "rf18rl00000042".
# A lookahead, so a candidate that swallowed the next reference does not hide it.
_CANDIDATE = re.compile(r"(?=(RF\d{2}(?:\s?[0-9A-Z]){1,21}))", re.IGNORECASE)


def _base10(text: str) -> str:
    """Letters become two digits (A=10 … Z=35), as ISO 7064 mod 97-10 asks."""
    return "".join(str(int(char, 36)) for char in text)


def for_invoice(invoice_id: int) -> str:
    """The compact reference of an invoice, e.g. RF71RL00000042."""
    if invoice_id <= 0:
        raise ValueError("an invoice id is positive")
    body = f"{PREFIX}{invoice_id:0{WIDTH}d}"
    check = mod_97_10.calc_check_digits(_base10(body + "RF"))
    reference = f"RF{check}{body}"
    iso11649.validate(reference)  # never fails for our own bodies; proves the construction
    return reference


def printable(reference: str) -> str:
    """Groups of four, the way a payer types it: 'RF71 RL00 0000 42'."""
    return str(iso11649.format(reference))


def invoice_id(reference: str) -> int | None:
    """The invoice a valid reference of ours names; None for a wrong check digit or a foreign one."""
    compact = str(iso11649.compact(reference))
    if not iso11649.is_valid(compact):
        return None
    body = compact[4:]
    if not body.startswith(PREFIX) or not body[len(PREFIX) :].isdigit():
        return None
    number = int(body[len(PREFIX) :])
    return number or None


def find_in_text(text: str) -> list[int]:
    """Invoice ids named by valid references of ours anywhere in a remittance text, in order."""
    found: list[int] = []
    for match in _CANDIDATE.finditer(text or ""):
        candidate = match.group(1)
        # A greedy match may swallow the next word ("RF71RL00000042 MERCI"); try shorter ends.
        compact = re.sub(r"\s", "", candidate).upper()
        for end in range(len(compact), 4, -1):
            number = invoice_id(compact[:end])
            if number is not None:
                if number not in found:
                    found.append(number)
                break
    return found
