"""A plan proposal still waiting for the debtor's yes or no.

Seen in the simulator: after the counter-offer ("6 x 100 €, d'accord ?") the debtor asked
something else ("il fait beau chez vous ?", "combien je dois déjà ?"), got the answer, then said
"ouais ok" -- and no plan was made. The rules that take a yes or no to a proposal only look at
the turn right after `action_evaluate_plan`; one aside in between and the proposal was lost
while the slots still held it. An aside answered outside any form now ends with the proposal
evaluated and said again (`FollowupAction(action_evaluate_plan)`), so the next "oui" or "non"
lands on the same rules as if nothing had come in between. Evaluating again rather than
repeating the old text also catches what changed meanwhile (a payment, a plan agreed on the
portal). Only the turn right after the proposal counts: once the debtor has moved on to
something that is not an aside, no plan comes back out of the blue.
"""

from __future__ import annotations

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, FollowupAction

from actions._common import previous_action

PROPOSAL = "action_evaluate_plan"
# Waiting for an answer after these statuses (needs_approval goes to a collector at once).
WAITING = frozenset({"within_limits", "counter_offer"})


def plan_offer_just_made(tracker: Tracker) -> bool:
    """The bot's last answer before the latest message proposed a plan that waits for a yes
    (also what makes a weak "yes" a plan acceptance to confirm, actions/confirmation.py)."""
    return tracker.get_slot("plan_status") in WAITING and previous_action(tracker) == PROPOSAL


def awaiting_plan_answer(tracker: Tracker) -> bool:
    """A plan proposal, still open, was the bot's last answer, and no form asks anything."""
    if tracker.active_loop_name or not tracker.get_slot("plan_proposal"):
        return False
    return plan_offer_just_made(tracker)


def ask_again(tracker: Tracker) -> list[EventType]:
    """After an aside: the proposal again, when one was waiting; else nothing."""
    return [FollowupAction(PROPOSAL)] if awaiting_plan_answer(tracker) else []
