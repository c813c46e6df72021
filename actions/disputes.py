"""Disputes: ask the reason and details, register the dispute (pauses dunning), confirm.

The confirmation says what the dispute does to a running payment plan: the instalments that ask
for the contested money are held (`relance/plans/holds.py`), and a debtor who just said they do
not owe it should not be left expecting their card to be charged for it."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions._common import debtor_of, filled_slot, latest_text, not_an_answer, unit_of_work, utter
from actions.confirmation import FormThatAsksBeforeLeaving, declined
from actions.handoff import escalate_on_signal
from actions.late_reasons import stated_reason
from relance.disputes import repository as disputes_repository
from relance.disputes.service import classify_reason, create_dispute, withdraws_dispute
from relance.late_reasons.service import record_reason
from relance.plans.holds import Held, what_is_held


class ActionAskDisputeReason(Action):
    def name(self) -> str:
        return "action_ask_dispute_reason"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        utter(dispatcher, "utter_ask_dispute_reason")
        return []


class ActionAskDisputeDetails(Action):
    def name(self) -> str:
        return "action_ask_dispute_details"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        utter(dispatcher, "utter_ask_dispute_details")
        return []


class ValidateDisputeForm(FormThatAsksBeforeLeaving):
    own_intents = ("dispute_debt",)

    def name(self) -> str:
        return "validate_dispute_form"

    def withdraws(self, tracker: Tracker) -> bool:
        """A "no" to "what is wrong?" ("non laissez tomber") drops the dispute; "non, c'est pas à moi"
        names a reason and stays an answer. ("non" to the description is one: nothing to add.)
        Seen in the simulator: the "no" was refused by the reason's mapping, the form was
        rejected, the bot said "I didn't understand" and the next question ("combien je
        dois ?") was a second misunderstanding, so a handoff."""
        text = latest_text(tracker)
        if withdraws_dispute(text):
            # "forget the dispute" (read as dispute_debt): at any question, and when it starts
            # the form, nothing is registered.
            return True
        return declined(tracker, "dispute_reason") and classify_reason(text) is None

    def validate_dispute_reason(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        if not_an_answer(tracker, "dispute_debt"):
            return {"dispute_reason": None}
        text = str(slot_value or "")
        reason = classify_reason(text)
        if reason is not None:
            return {"dispute_reason": reason}
        if tracker.get_slot("requested_slot") != "dispute_reason":
            # Prefilled from a generic "I dispute this": ask which problem it is.
            return {"dispute_reason": None}
        events: dict[str, Any] = {"dispute_reason": "other"}
        if len(text.split()) >= 4:
            events["dispute_details"] = text  # the answer already describes the problem
        return events

    def validate_dispute_details(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        if not_an_answer(tracker, "dispute_debt"):
            return {"dispute_details": None}
        text = str(slot_value or "").strip()
        return {"dispute_details": text[:2000] if text else None}


class ActionCreateDispute(Action):
    def name(self) -> str:
        return "action_create_dispute"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events: list[EventType] = [
            SlotSet("dispute_reason", None),
            SlotSet("dispute_details", None),
        ]
        with unit_of_work() as session:
            debtor = debtor_of(session, tracker)
            if debtor is None:
                return events
            dispute = create_dispute(
                session,
                debtor,
                reason=filled_slot(tracker, "dispute_reason"),
                details=tracker.get_slot("dispute_details"),
                invoice_id=named_invoice(
                    [
                        (i.number, i.id)
                        for i in disputes_repository.open_invoices(session, debtor.id)
                    ],
                    _dispute_texts(tracker),
                ),
            )
            # A dispute is also why this debtor has not paid: counted with the other reasons.
            record_reason(
                session,
                debtor,
                category="dispute",
                stated=replace(
                    stated_reason(session, tracker), text=tracker.get_slot("dispute_details") or ""
                ),
            )
            utter(
                dispatcher,
                "utter_dispute_created",
                dispute_reference=dispute.reference,
                **_plan_held(what_is_held(session, dispute)),
            )
            events.append(SlotSet("dispute_reference", dispute.reference))
            details = f"{tracker.get_slot('dispute_details') or ''} {latest_text(tracker)}"
            events += escalate_on_signal(session, dispatcher, tracker, details)
        return events


def _dispute_texts(tracker: Tracker) -> list[str]:
    """What the debtor wrote while raising this dispute: the messages since the bot's previous
    answer to anything else, at most the last four."""
    texts: list[str] = []
    for event in reversed(tracker.events):
        if event.get("event") == "action" and event.get("name") == "action_create_dispute":
            break
        if event.get("event") == "user":
            texts.append(str(event.get("text") or ""))
            if len(texts) == 4:
                break
    return texts


def _alnum(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


def named_invoice(invoices: list[tuple[str, int]], texts: list[str]) -> int | None:
    """The one open invoice whose number the debtor wrote ("la facture F2026-1007, le colis
    n'est jamais arrivé"), whatever the spacing and dashes; None when none or several are named.
    Seen in the simulator: the dispute was registered against the whole account, so every
    reminder and the whole payment plan stopped for one contested invoice of two."""
    said = " ".join(_alnum(t) for t in texts)
    named = [i for number, i in invoices if len(_alnum(number)) >= 4 and _alnum(number) in said]
    return named[0] if len(named) == 1 else None


def _plan_held(held: Held | None) -> dict[str, Any]:
    """The reply's words for the plan: paused (`all`), paused for part of it (`part`, for how
    much), or nothing to say (no plan, or the dispute holds none of it)."""
    if held is None:
        return {}
    return {
        "plan_held": "all" if held.whole_plan else "part",
        "held_minor": held.amount_minor,
        "currency": held.currency,
    }
