"""How an outbound reminder tells the assistant its stage and whether it must stay discreet.

A reminder to a contact point the debtor has not yet answered from after the identity check
could reach someone else (a reassigned number, a shared phone): it is *discreet* — creditor
name and "please reply" only, no name, amount, invoice or link. The dispatcher decides (the
compliance check); the assistant's reminder action and the voice call opening read it here.
"""

from __future__ import annotations

DISCREET_TEMPLATE = "utter_reminder_discreet"
_PREFIX = "reminder:"
_DISCREET = ":discreet"


def reminder_purpose(stage: str, *, discreet: bool) -> str:
    """The `purpose` of an outbound reminder call, e.g. `reminder:firm:discreet`."""
    return _PREFIX + stage + (_DISCREET if discreet else "")


def parse_reminder_purpose(purpose: str | None) -> tuple[str, bool] | None:
    """`(stage, discreet)` for a reminder purpose, None for any other call."""
    if not purpose or not purpose.startswith(_PREFIX):
        return None
    stage = purpose[len(_PREFIX) :]
    discreet = stage.endswith(_DISCREET)
    return stage.removesuffix(_DISCREET), discreet


def is_true(value: object) -> bool:
    """Entity values arrive as strings or booleans depending on the path (JSON or `/intent{}`)."""
    return str(value).strip().lower() in {"true", "1", "yes"}
