"""Payment plans: collect, evaluate against policy limits, create or ask a collector."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions._common import (
    debtor_of,
    language,
    latest_text,
    not_an_answer,
    today,
    unit_of_work,
    utter,
)
from actions.handoff import escalate_on_signal, hand_off
from actions.plan_offer import answers_the_review_question, plan_in_place
from payment_links.service import create_link
from relance.errors import RelanceError
from relance.nlu_normalise import (
    fold,
    installments_for,
    parse_count,
    parse_frequency,
    parse_installment_amount,
)
from relance.plans import repository as plans_repository
from relance.plans import service as plans
from relance.policy.service import plan_limits_for

# "dans 2 semaines", "in three weeks", "d'ici 1 mois": when, not how often nor how many times.
_IN_A_WHILE = re.compile(
    r"\b(?:dans|in|d'ici|within)\s+\S+\s+(?:semaines?|weeks?|mois|months?|jours?|days?)\b"
)

# "peu importe", "comme vous voulez", "whatever suits you": no rhythm preferred.
_NO_PREFERENCE = re.compile(
    r"\b(?:peu importe|comme (?:vous|tu) (?:voulez|veux|preferez)|ca m'est egal|"
    r"pas de preference|whatever|any(?:thing| of them| is fine)|(?:it )?doesn'?t matter|"
    r"as you (?:like|wish|want|prefer)|up to you|no preference|either)\b"
)

RESET = (
    "plan_installments",
    "plan_frequency",
    "plan_amount",
    "plan_first_amount",
    "plan_proposal",
    "plan_request",
)


def _reset() -> list[EventType]:
    return [SlotSet(name, None) for name in RESET]


class ActionAskPlanInstallments(Action):
    def name(self) -> str:
        return "action_ask_plan_installments"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        utter(
            dispatcher, "utter_ask_plan_installments", max_installments=_max_installments(tracker)
        )
        return []


def _max_installments(tracker: Tracker) -> int | None:
    """The most instalments the policy allows this debtor for what they owe (what the count
    question offers: "up to N")."""
    with unit_of_work() as session:
        debtor = debtor_of(session, tracker)
        if debtor is None:
            return None
        invoices = plans_repository.open_invoices(session, debtor.id)
        total = sum(i.balance_minor for i in invoices)
        return plan_limits_for(session, debtor, total).max_installments


class ActionAskPlanFrequency(Action):
    def name(self) -> str:
        return "action_ask_plan_frequency"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        utter(dispatcher, "utter_ask_plan_frequency")
        return []


def _open_balance(tracker: Tracker) -> int | None:
    with unit_of_work() as session:
        debtor = debtor_of(session, tracker)
        if debtor is None:
            return None
        return sum(i.balance_minor for i in plans_repository.open_invoices(session, debtor.id))


def _plan_request_texts(tracker: Tracker) -> list[str]:
    """Where the debtor may have said the plan they want: the latest message, and the message
    that asked for a plan before the identity check came in between ("je peux payer 50 euros par
    mois" -> postcode -> the form starts). Not past the last plan evaluated."""
    texts: list[str] = []
    latest = True
    for event in reversed(tracker.events):
        if event.get("event") == "action" and event.get("name") == "action_evaluate_plan":
            break
        if event.get("event") != "user":
            continue
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if latest or intent == "request_payment_plan":
            texts.append(str(event.get("text") or ""))
        if not latest and intent == "request_payment_plan":
            break
        latest = False
    return texts


def from_amount_per_installment(tracker: Tracker, text: str) -> dict[str, Any] | None:
    """ "5 euros par mois" is a plan request too: balance / amount instalments (rounded up), the
    frequency if said. Checked against the policy limits by action_evaluate_plan like any count
    (far too many instalments -> the counter-offer). None if `text` gives no such amount."""
    offer = parse_installment_amount(text, language(tracker))
    if offer is None:
        return None
    balance = _open_balance(tracker)
    if not balance:
        return None
    slots: dict[str, Any] = {
        "plan_installments": installments_for(balance, offer.amount_minor),
        "plan_amount": offer.amount_minor,
    }
    if offer.frequency and not parse_frequency(tracker.get_slot("plan_frequency")):
        slots["plan_frequency"] = offer.frequency
    return slots


def _no_preference(tracker: Tracker) -> bool:
    intent = ((tracker.latest_message or {}).get("intent") or {}).get("name")
    return intent == "affirm" or _NO_PREFERENCE.search(fold(latest_text(tracker))) is not None


class ValidatePlanForm(FormValidationAction):
    def name(self) -> str:
        return "validate_plan_form"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        """Nothing to ask a debtor who already has a plan: the form ends at once and
        action_evaluate_plan says where the plan stands (see actions.plan_offer)."""
        with unit_of_work() as session:
            debtor = debtor_of(session, tracker)
            if debtor is not None and plans_repository.live_plan(session, debtor.id) is not None:
                return []
        return domain_slots

    def extract_plan_installments(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """An amount per instalment said with the request, before the form asked for a count."""
        if tracker.get_slot("plan_installments") is not None:
            return {}
        texts = _plan_request_texts(tracker)
        for text in texts:
            slots = from_amount_per_installment(tracker, text)
            if slots is not None:
                return slots
        # A count said in words the entity extractor labelled otherwise ("en 3 fois par mois"
        # read as an amount): the words decide, as parse_count reads them.
        for text in texts:
            count = parse_count(text, language(tracker))
            if count is not None and count >= 2:
                return {"plan_installments": count}
        return {}

    def extract_plan_frequency(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """A frequency said with the count ("3 monthly payments", "en 3 fois par mois"), which the
        entity extractor may leave unlabelled: the debtor was asked "how often?" after saying it.
        Only beside a count or an amount per instalment, and "dans 2 semaines" / "in 3 weeks" is
        a date, neither a count nor a frequency."""
        if tracker.get_slot("plan_frequency") is not None:
            return {}
        if not_an_answer(tracker, "request_payment_plan"):
            return {}
        for said in _plan_request_texts(tracker):
            text = _IN_A_WHILE.sub(" ", fold(said))
            frequency = parse_frequency(text)
            count = parse_count(text, language(tracker))
            said_a_plan = (count is not None and count >= 2) or (
                parse_installment_amount(text, language(tracker)) is not None
            )
            if frequency is not None and said_a_plan:
                return {"plan_frequency": frequency}
        return {}

    def validate_plan_installments(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        if not_an_answer(tracker, "request_payment_plan"):
            return {"plan_installments": None}
        # The entity's span is a hint, the debtor's words decide: a model may label "en" of
        # "en 3 fois par mois" as the count and "3 fois" as an amount. When the labelled value
        # reads as no count, the whole message is read the same way.
        text = str((tracker.latest_message or {}).get("text") or "")
        # Not dict.fromkeys: two entities give the slot a list, which is not hashable.
        for said in [slot_value] + ([text] if text and text != slot_value else []):
            if isinstance(said, str) and said:  # "5 euros par mois": an amount, not 5 instalments
                slots = from_amount_per_installment(tracker, said)
                if slots is not None:
                    return slots
            count = parse_count(said, language(tracker))
            if count is not None and count >= 2:
                return {"plan_installments": count}
        if tracker.get_slot("requested_slot") == "plan_installments":
            limit = _max_installments(tracker) if _no_preference(tracker) else None
            if limit is not None and limit >= 2:
                # "ok", "fine let's do it", "as you like" to "in how many payments? (up to 3)":
                # the most the question offered. The proposal that follows says it and waits
                # for the debtor's yes, better than "Sorry, I couldn't read that" to an agreeable
                # answer.
                return {"plan_installments": limit}
            utter(dispatcher, "utter_invalid_answer", field="installments")
        return {"plan_installments": None}

    def validate_plan_frequency(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        if not_an_answer(tracker, "request_payment_plan"):
            return {"plan_frequency": None}
        # An odd entity ("bucks" in "50 bucks a month"): the words of the message may still say it.
        frequency = parse_frequency(str(slot_value) if slot_value is not None else None) or (
            parse_frequency(latest_text(tracker)) if slot_value is not None else None
        )
        asked = tracker.get_slot("requested_slot") == "plan_frequency"
        if frequency is None and asked and _no_preference(tracker):
            # "oui" or "peu importe" to "monthly, every two weeks or weekly?": the first choice
            # offered. The proposal that follows says "monthly" and waits for the debtor's yes,
            # which is better than "Sorry, I couldn't read that" to an agreeable answer.
            return {"plan_frequency": "monthly"}
        if frequency is None:
            if asked:
                utter(dispatcher, "utter_invalid_answer", field="frequency")
            return {"plan_frequency": None}
        return {"plan_frequency": frequency}


class ActionEvaluatePlan(Action):
    """Sets plan_status (within_limits | counter_offer | needs_approval) for the stories."""

    def name(self) -> str:
        return "action_evaluate_plan"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        with unit_of_work() as session:
            debtor = debtor_of(session, tracker)
            invoices = plans_repository.open_invoices(session, debtor.id) if debtor else []
            if debtor is None or not invoices:
                utter(dispatcher, "utter_no_balance")
                return [SlotSet("plan_status", "declined"), *_reset()]
            stands = plan_in_place(session, dispatcher, debtor)
            if stands is not None:
                return [*stands, *_reset()]
            escalated = escalate_on_signal(session, dispatcher, tracker, latest_text(tracker))
            total = sum(i.balance_minor for i in invoices)
            evaluation = plans.evaluate(
                plan_limits_for(session, debtor, total),
                total_minor=total,
                currency=invoices[0].currency,
                installments=int(tracker.get_slot("plan_installments") or 2),
                frequency=tracker.get_slot("plan_frequency"),
                first_minor=tracker.get_slot("plan_first_amount"),
                today=today(debtor),
            )
        events: list[EventType] = [
            *escalated,
            SlotSet("plan_status", evaluation.status),
            SlotSet(
                "plan_request", evaluation.requested.as_dict() if evaluation.requested else None
            ),
        ]
        if evaluation.proposal is not None:
            events.append(SlotSet("plan_proposal", evaluation.proposal.as_dict()))
            response = (
                "utter_plan_within_limits"
                if evaluation.status == "within_limits"
                else "utter_plan_counter_offer"
            )
            variables: dict[str, Any] = evaluation.proposal.variables()
            if evaluation.status == "counter_offer" and evaluation.requested is not None:
                # The wording tells "not that many instalments" from "as many, with a larger
                # first one" (a down payment the policy asks): "I can't go that far" would
                # contradict a counter-offer of the very count the debtor asked for.
                variables["requested_installments"] = evaluation.requested.installments
            utter(dispatcher, response, **variables)
        return events


class ActionCreatePlan(Action):
    """Create the agreed plan and send the link for the first instalment."""

    def name(self) -> str:
        return "action_create_plan"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        proposal_data = tracker.get_slot("plan_proposal")
        with unit_of_work() as session:
            debtor = debtor_of(session, tracker)
            if debtor is None or not proposal_data:
                return [SlotSet("plan_status", "declined"), *_reset()]
            # "oui" said twice, or a plan agreed meanwhile on the portal: never a second plan.
            # The debtor just agreed to a plan: where it stands, and nothing to review.
            stands = plan_in_place(session, dispatcher, debtor, review=False)
            if stands is not None:
                return [*stands, *_reset()]
            proposal = plans.Proposal.from_dict(proposal_data)
            plan = plans.create_plan(session, debtor, proposal)
            first = plan.installments[0]
            try:
                _, url = create_link(
                    session, debtor=debtor, purpose="installment", installment=first
                )
            except RelanceError:  # the plan stands; its first link can come with the reminder
                url = None
            utter(
                dispatcher,
                "utter_plan_created",
                custom={"payment_url": url} if url else None,
                installments=plan.installments_count,
                first_minor=first.amount_minor,
                first_date=first.due_date.isoformat(),
                currency=plan.currency,
                pay_url=url,
            )
        return [SlotSet("plan_status", "created"), *_reset()]


class ActionRequestPlanApproval(Action):
    """Outside what the bot may agree: keep the debtor's request for a collector to decide."""

    def name(self) -> str:
        return "action_request_plan_approval"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        requested = tracker.get_slot("plan_request")
        status = tracker.get_slot("plan_status")
        with unit_of_work() as session:
            debtor = debtor_of(session, tracker)
            events: list[EventType] = []
            stands = plan_in_place(session, dispatcher, debtor)
            if stands is not None:
                return [*stands, *_reset()]
            if debtor is not None and requested:
                reason = "outside_limits" if status == "needs_approval" else "counter_offer_refused"
                plans.request_approval(
                    session, debtor, plans.Proposal.from_dict(requested), reason=reason
                )
                utter(
                    dispatcher,
                    "utter_plan_needs_approval"
                    if status == "needs_approval"
                    else "utter_plan_approval_requested",
                )
                events = hand_off(
                    session,
                    dispatcher,
                    tracker,
                    reason="plan_approval",
                    details=reason,
                    notify=False,
                )
        return [*events, SlotSet("plan_status", "pending_approval"), *_reset()]


class ActionDeclinePlan(Action):
    """ "No" to the plan proposed, or, on a running plan, to a collector looking at changing it:
    then the plan stays as it is (utter_plan_kept), nothing handed off."""

    def name(self) -> str:
        return "action_decline_plan"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        kept = answers_the_review_question(tracker)
        utter(dispatcher, "utter_plan_kept" if kept else "utter_plan_declined")
        return [SlotSet("plan_status", "declined"), *_reset()]
