"""Details of a payment the debtor reported, given after the report was recorded.

Seen in conversation: "je l'ai déjà payée par virement le 2 décembre", the reference asked and
given, the claim recorded; then "par virement", then "le 2/12". Nothing asked for those, so each
was "I did not understand" and the second one handed the debtor to a person, although all they
did was add what the reconciliation team needs. Right after a payment report, a message that
holds a payment method, a past date or a reference is added to the open reconciliation task
(relance.ledger.reconciliation) and acknowledged.
"""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions._common import debtor_of, language, latest_text, today, tracker_today, utter
from relance.ledger.reconciliation import open_reconciliation_task
from relance.nlu_normalise import fold, parse_date

RECORD_ACTION = "action_record_already_paid"
# How many of the debtor's messages after the report still read as details of it.
FOLLOW_UP_TURNS = 3
# The assistant's own steps between the report and the detail that do not end the topic.
_PASSING = {"action_listen", "action_route_unasked_answer", "action_default_fallback"}
METHODS = {
    "transfer": r"\b(virement|vir|transfer|wire|bank transfer)\b",
    "cheque": r"\b(cheque|check)\b",
    "card": r"\b(carte|cb|card)\b",
    "direct_debit": r"\b(prelevement|direct debit)\b",
    "cash": r"\b(especes|liquide|cash)\b",
}
# A transfer or cheque reference: a run of letters/digits (dashes, slashes) holding a digit.
_REFERENCE = re.compile(r"\b(?=[\w/-]*\d)[A-Za-z0-9][\w/-]{3,}\b")


def follows_a_payment_report(tracker: Tracker) -> bool:
    """Whether the debtor's latest message comes right after a recorded payment report: no other
    business step of the assistant since, within FOLLOW_UP_TURNS of the debtor's messages."""
    users = 0
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "user":
            users += 1
            if users > FOLLOW_UP_TURNS:
                return False
        elif kind == "action":
            name = str(event.get("name") or "")
            if name == RECORD_ACTION:
                return True
            if name not in _PASSING and not name.startswith("utter_"):
                return False
    return False


def payment_details(tracker: Tracker) -> dict[str, Any]:
    """The method, past date and reference the latest message holds (empty: none)."""
    text = latest_text(tracker)
    folded = fold(text)
    details: dict[str, Any] = {}
    method = next((name for name, pattern in METHODS.items() if re.search(pattern, folded)), None)
    if method:
        details["method"] = method
    today = tracker_today(tracker)
    paid = parse_date(text, language(tracker), today=today, direction="past")
    if paid is not None and paid <= today:
        details["claimed_date"] = paid.isoformat()
    elif (reference := _REFERENCE.search(text)) is not None:
        details["reference"] = reference.group(0)[:80]
    return details


def add_to_report(
    session: Session, dispatcher: CollectingDispatcher, tracker: Tracker, details: dict[str, Any]
) -> None:
    """Add the details to the open reconciliation task and say so. (`today(debtor)`, not
    tracker_today: that opens a second session, which on SQLite waits for this one's write lock
    until the busy timeout.)"""
    debtor = debtor_of(session, tracker)
    if debtor is not None:
        open_reconciliation_task(
            session, debtor_id=debtor.id, source="bot", today=today(debtor), **details
        )
    utter(dispatcher, "utter_payment_detail_noted")
