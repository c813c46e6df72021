"""An answer nobody asked for: `inform` outside any form.

Debtors answer questions before they are asked, or after the question has moved on: "en 3 fois
par mois" one off-topic question after the plan offer, a postcode typed before the identity
question. Rasa has no rule for an `inform` with no form to fill, so such a message used to get
"I did not understand" (and a second one a handoff), although it said exactly what the debtor
wanted. This action reads what the message holds and routes it:

- a plan (a number of instalments, a frequency, or an amount per instalment with its currency):
  the plan form, behind the identity check like any plan request; the slots the message filled
  (plan_installments, plan_frequency, plan_amount: global entity mappings) are taken on
  activation, so the debtor is not asked again what they just said;
- before the identity check, something that can be the identity answer (a postcode, a customer
  number): the identity form, with the message as its answer (validated like any answer, and
  counted as an attempt when wrong), then "how can I help";
- right after a payment report was recorded, a payment method, date or reference: added to the
  report (actions/payment_details.py);
- a few words naming the balance ("my balance", "mon solde", "le solde svp"): the balance
  question, behind the identity check. DIET labels them `inform` (its inform examples hold "tout
  le solde", an amount answer); seen in the e2e suite after a retrain on a new machine: "my
  balance" got "I didn't understand", and the "no" that followed was not the answer to "would
  you like a payment link?";
- once the identity is checked, a date ("fin du mois alors", "vendredi", "le 31 février"): when
  the debtor will pay, so the promise form with that date (it asks how much; a date that is no
  date, past or beyond the policy's limit is said so and the form asks for it again). Seen in
  the simulator: "le 31 février" then "fin du mois alors", after "ok je vais payer", got "I
  didn't understand" and a handoff;
- anything else: the custom fallback, exactly as before (ask to rephrase; twice hands off).
"""

from __future__ import annotations

import re

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import payment_details
from actions._common import (
    language,
    latest_entity,
    latest_text,
    tracker_today,
    unit_of_work,
    utter,
)
from relance.identity import service as identity
from relance.nlu_normalise import fold, parse_date, parse_frequency, parse_installment_amount
from relance.promises import service as promises

NAME = "action_route_unasked_answer"
PLAN_ENTITIES = ("installments", "frequency")


def holds_a_plan(tracker: Tracker) -> bool:
    """The message says how the debtor wants to spread the payment."""
    if any(latest_entity(tracker, entity) for entity in PLAN_ENTITIES):
        return True
    text = latest_text(tracker)
    return parse_installment_amount(text, language(tracker)) is not None or (
        latest_entity(tracker, "amount") is not None and parse_frequency(text) is not None
    )


def to_the_plan_form(tracker: Tracker) -> list[EventType]:
    """The plan form, behind the identity check like any plan request; the slots the message
    filled (global entity mappings) are taken on activation."""
    form = "plan_form" if tracker.get_slot("identity_verified") else "identity_form"
    return [SlotSet("pending_request", "payment_plan"), FollowupAction(form)]


# The balance named in a few words; longer messages say more than that and go their own way.
_BALANCE = re.compile(
    r"\b(?:balance|solde|montant du|montant restant|reste a payer|what i owe|amount due"
    r"|ce que je dois|ce que je vous dois)\b"
)
_FEW_WORDS = 4


def asks_the_balance(tracker: Tracker) -> bool:
    text = fold(latest_text(tracker))
    return len(text.split()) <= _FEW_WORDS and _BALANCE.search(text) is not None


def holds_an_identity_answer(tracker: Tracker) -> bool:
    return bool(identity.candidates(latest_text(tracker), language(tracker)))


class ActionRouteUnaskedAnswer(Action):
    def name(self) -> str:
        return NAME

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        verified = bool(tracker.get_slot("identity_verified"))
        if holds_a_plan(tracker):
            return to_the_plan_form(tracker)
        if verified and payment_details.follows_a_payment_report(tracker):
            details = payment_details.payment_details(tracker)
            if details:
                with unit_of_work() as session:
                    payment_details.add_to_report(session, dispatcher, tracker, details)
                # The turn ends here: the rule that brought the message here does not wait for
                # the user, and left to itself the policy follows this action with the fallback.
                return [FollowupAction("action_listen")]
        if verified and latest_entity(tracker, "date") is not None:
            return promise_from_date(dispatcher, tracker)
        if asks_the_balance(tracker):
            balance = "action_give_balance" if verified else "identity_form"
            return [SlotSet("pending_request", "balance"), FollowupAction(balance)]
        if not verified and holds_an_identity_answer(tracker):
            return [
                SlotSet("pending_request", "help"),
                SlotSet("identity_answer", latest_text(tracker)),
                FollowupAction("identity_form"),
            ]
        return [FollowupAction("action_default_fallback")]


def promise_from_date(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """The promise form, with the date the message gave when it is one the policy accepts;
    else the reason it is not (no such date, past, too far) and the form asks for the date."""
    now = tracker_today(tracker)
    promised = parse_date(latest_text(tracker), language(tracker), today=now, direction="future")
    check = promises.check_date(promised, now) if promised is not None else "past"
    if check == "too_late":
        utter(
            dispatcher, "utter_promise_too_late", max_date=promises.latest_allowed(now).isoformat()
        )
    elif check != "ok":
        utter(dispatcher, "utter_invalid_answer", field="date")
    return [
        SlotSet("pending_request", "promise"),
        SlotSet("promise_date", promised.isoformat() if promised and check == "ok" else None),
        FollowupAction("promise_form"),
    ]
