"""EXTERNAL_reminder: the dunning engine primes a conversation; say the stage's reminder.

The engine marks the reminder `discreet` when the contact point is not yet known to be the
debtor's (see relance/conversations/reminder_purpose.py): then nothing about the debt is said.
"""

from __future__ import annotations

import copy

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions._common import debtor_of, latest_entity, today, unit_of_work, utter
from actions.confirmation import replay
from payment_links.service import create_link
from relance.conversations.reminder_purpose import DISCREET_TEMPLATE, is_true
from relance.dunning.reminder_content import reminder_invoices, reminder_variables
from relance.errors import RelanceError
from relance.late_reasons.service import plan_first_reason
from relance.plans import repository as plans_repository

STAGES = ("pre_due", "friendly", "firm", "final", "formal_notice_announce")
PLAN_OFFER = "action_offer_plan"


class ActionSendReminder(Action):
    def name(self) -> str:
        return "action_send_reminder"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        stage = latest_entity(tracker, "stage") or tracker.get_slot("stage") or "friendly"
        if stage not in STAGES:
            stage = "friendly"
        # The dispatcher sends the numbers as a list entity; latest_entity would stringify it
        # ("['F-1', 'F-2']"), which then named no invoice.
        listed = next(iter(tracker.get_latest_entity_values("invoice_refs")), None)
        refs = (
            [str(r) for r in listed]
            if isinstance(listed, list)
            else latest_entity(tracker, "invoice_refs") or tracker.get_slot("invoice_refs")
        )
        if is_true(latest_entity(tracker, "discreet")):
            # Unverified contact point: who we are and "please reply" only (no debt detail).
            utter(dispatcher, DISCREET_TEMPLATE, stage=stage)
            return [SlotSet("stage", stage), SlotSet("disclosed", True)]
        with unit_of_work() as session:
            debtor = debtor_of(session, tracker)
            if isinstance(refs, str):
                refs = [r.strip() for r in refs.split(",") if r.strip()]
            if debtor is None:
                return [SlotSet("stage", stage)]
            # The named invoices stay in even before their date (a pre-due reminder of an
            # instalment); the other instalments still to come are not claimed.
            invoices = plans_repository.open_invoices(session, debtor.id, named=refs or ())
            # Only what the reminder is about is claimed: the named invoices already due (an
            # invoice due next month is not "overdue"), or the named upcoming one before its date.
            now = today(debtor)
            about = reminder_invoices(invoices, refs, stage=stage, today=now)
            if not about:
                return [SlotSet("stage", stage)]
            try:  # the link is for those invoices: its page shows the amount the reminder says
                _, url = create_link(
                    session, debtor=debtor, purpose="balance", invoice_ids=[i.id for i in about]
                )
            except RelanceError:  # the reminder still goes out, without a link
                url = None
            utter(
                dispatcher,
                f"utter_reminder_{stage}",
                custom={"payment_url": url} if url else None,
                **reminder_variables(debtor, about, refs, today=now, pay_url=url),
            )
            # The debtor told us why they pay late (job loss, illness…) and the policy offers a
            # plan first: the reminder ends with the plan offer, whose answer the rules follow.
            plan_first = plan_first_reason(session, debtor) is not None
        events: list[EventType] = [SlotSet("stage", stage), SlotSet("disclosed", True)]
        return [*events, FollowupAction(PLAN_OFFER)] if plan_first else events


class ActionAnswerReminder(Action):
    """A bare "yes" or "no" to the reminder ("Can you pay today, or is there a problem?").

    Seen in an end-to-end probe: "oui", "non", "yes i can", "no" right after the reminder had no
    rule and got "I didn't understand", although they are the most natural replies to it. "Yes"
    is thanked and pointed to the link the reminder carried (a discreet reminder, which said
    nothing about the debt, gets "how can I help?"); "no" is "I can't pay today": the message is
    replayed as cannot_pay, so the identity check, the understanding and the plan offer follow
    exactly as for "je ne peux pas payer".
    """

    def name(self) -> str:
        return "action_answer_reminder"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        message = tracker.latest_message or {}
        if (message.get("intent") or {}).get("name") == "deny":
            latest = next(e for e in reversed(tracker.events) if e.get("event") == "user")
            as_cannot_pay = copy.deepcopy(dict(latest))
            as_cannot_pay["parse_data"] = {
                **dict(latest.get("parse_data") or {}),
                "intent_ranking": [{"name": "cannot_pay", "confidence": 1.0}],
            }
            return replay(as_cannot_pay, reverts=1)
        utter(dispatcher, "utter_how_can_i_help" if _was_discreet(tracker) else REMINDER_YES)
        return []


REMINDER_YES = "utter_reminder_affirmed"


def _was_discreet(tracker: Tracker) -> bool:
    """The reminder this answers said nothing about the debt (an unverified contact point)."""
    for event in reversed(tracker.events):
        if (
            event.get("event") == "user"
            and ((event.get("parse_data") or {}).get("intent") or {}).get("name")
            == "EXTERNAL_reminder"
        ):
            entities = (event.get("parse_data") or {}).get("entities") or []
            return any(e.get("entity") == "discreet" and is_true(e.get("value")) for e in entities)
    return False
