"""Payment links and "I already paid" (reconciliation task, reminders paused)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions._common import (
    debtor_of,
    latest_entity,
    not_an_answer,
    said_date,
    today,
    tracker_today,
    unit_of_work,
    utter,
)
from actions.confirmation import FormThatAsksBeforeLeaving, declined
from actions.late_reasons import record_request_reason
from payment_links.service import create_link
from relance.errors import RelanceError
from relance.ledger.reconciliation import PAUSE_DAYS, open_reconciliation_task
from relance.nlu_normalise import fold, is_unknown_answer
from relance.plans import repository as plans_repository

UNKNOWN = "unknown"
# "On what date did you pay?" is asked again after this many answers that were no readable date;
# the next one, readable or not, lets the report go on without a date (see validate_paid_date).
UNREAD_DATES_BEFORE_MOVING_ON = 2
_FORGOT_DATE = re.compile(
    r"(sais plus|sait plus|souviens plus|souvient plus|rappelle plus|sais pas|sait pas|jsp\b"
    r"|aucune idee|plus trop|remember|no idea|not sure|dunno|idk\b|don ?t know|do not know)"
)


def _since_first_asked(tracker: Tracker) -> list[dict[str, Any]]:
    """The bot's messages since the form first asked for the date (none before it asked)."""
    said: list[dict[str, Any]] = []
    for event in reversed(tracker.events):
        if event.get("event") == "active_loop" and event.get("name") == "already_paid_form":
            return []
        if event.get("event") == "bot":
            said.append(event.get("metadata") or {})
            if said[-1].get("utter_action") == "utter_ask_paid_date":
                return said
    return []


def forgot_the_date(text: str) -> bool:
    """ "je sais plus", "I don't remember": the debtor cannot give the date they paid."""
    folded = fold(text)
    return _FORGOT_DATE.search(folded) is not None or (
        is_unknown_answer(text) and folded not in ("non", "no", "nope", "nan")
    )


class ActionSendPaymentLink(Action):
    def name(self) -> str:
        return "action_send_payment_link"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        if not tracker.get_slot("identity_verified"):
            return []
        with unit_of_work() as session:
            debtor = debtor_of(session, tracker)
            if debtor is None:
                utter(dispatcher, "utter_payment_link_unavailable")
                return []
            record_request_reason(session, tracker, debtor, "forgot_to_pay")
            # A debtor on a plan pays the plan: the link is for the next installment (the balance
            # link would ask for everything the plan spread out).
            installment = plans_repository.next_installment(session, debtor.id)
            try:
                if installment is not None:
                    link, url = create_link(
                        session, debtor=debtor, purpose="installment", installment=installment
                    )
                else:
                    # What is due now, as the balance answer said it; with nothing due yet, all
                    # of it (paying early). A link for 600 € right after "100 € due now, 500 €
                    # next month" asked for money not yet due.
                    now = today(debtor)
                    due = [
                        i.id
                        for i in plans_repository.open_invoices(session, debtor.id, today=now)
                        if i.due_date <= now
                    ]
                    link, url = create_link(
                        session, debtor=debtor, purpose="balance", invoice_ids=due or None
                    )
            except RelanceError as exc:
                nothing = exc.code == "nothing_owed"
                utter(
                    dispatcher, "utter_no_balance" if nothing else "utter_payment_link_unavailable"
                )
                return []
            utter(
                dispatcher,
                "utter_payment_link",
                custom={"payment_url": url},
                pay_url=url,
                amount_minor=link.amount_minor,
                currency=link.currency,
                expires_at=link.expires_at.date().isoformat(),
                installment_date=installment.due_date.isoformat() if installment else None,
            )
        return []


class ActionAskPaidDate(Action):
    def name(self) -> str:
        return "action_ask_paid_date"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        # Asked again, the question says an approximate date will do and "I don't know" is an
        # answer: seven times "Thanks for letting us know. On what date did you pay?" in a row
        # (simulator) read as a machine that would never let go.
        again = bool(_since_first_asked(tracker))
        utter(dispatcher, "utter_ask_paid_date_again" if again else "utter_ask_paid_date")
        return []


class ActionAskPaymentReference(Action):
    def name(self) -> str:
        return "action_ask_payment_reference"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        utter(dispatcher, "utter_ask_payment_reference")
        return []


class ValidateAlreadyPaidForm(FormThatAsksBeforeLeaving):
    own_intents = ("already_paid",)

    def name(self) -> str:
        return "validate_already_paid_form"

    def withdraws(self, tracker: Tracker) -> bool:
        """A "no" to "on what date did you pay?" ("non en fait") takes the payment report back; "non,
        le 3" gives the date. ("no" to the reference question is an answer: no reference.)"""
        return declined(tracker, "paid_date") and latest_entity(tracker, "date") is None

    def validate_paid_date(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        if forgot_the_date(str(slot_value)):
            # Read as off-topic by the CI model ("je sais plus"), yet an answer to this question.
            return {"paid_date": UNKNOWN}
        if not_an_answer(tracker, "already_paid"):
            return {"paid_date": None}
        now = tracker_today(tracker)
        paid = said_date(slot_value, tracker, today=now, direction="past")
        if paid is not None and paid <= now:
            return {"paid_date": paid.isoformat()}
        unread = sum(
            1
            for said in _since_first_asked(tracker)
            if said.get("utter_action") == "utter_invalid_answer" and said.get("field") == "date"
        )
        if unread >= UNREAD_DATES_BEFORE_MOVING_ON:
            # The report goes on without a date: the team matches the payment by its amount
            # and reference; a date the debtor cannot give is no reason to keep asking.
            return {"paid_date": UNKNOWN}
        utter(dispatcher, "utter_invalid_answer", field="date")
        return {"paid_date": None}

    def validate_payment_reference(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        text = str(slot_value or "").strip()
        # "je n'en ai pas" is the answer whatever the NLU made of it (it fell back once, the
        # question came again, and the next detail, "par virement", became the reference).
        if text and is_unknown_answer(text):
            return {"payment_reference": UNKNOWN}
        if not_an_answer(tracker, "already_paid"):
            return {"payment_reference": None}
        if not text:
            return {"payment_reference": UNKNOWN}
        corrected = _paid_date_in(text, tracker)
        if corrected is not None:
            # "by bank transfer on the 28th" to the reference question: no reference, but the
            # day it was paid, said more precisely than the first time ("last week"). The newer
            # date wins, and the reference is asked again unless one came with it ("VIR-88412
            # le 28"): it had been recorded as the reference, beside the wrong date.
            paid, rest = corrected
            return {"paid_date": paid.isoformat(), "payment_reference": reference_in(rest)}
        return {"payment_reference": text[:80]}


def _paid_date_in(text: str, tracker: Tracker) -> tuple[date, str] | None:
    """The past date the message names (the NLU saw one), and the message without it."""
    spans = [str(v) for v in tracker.get_latest_entity_values("date") if v]
    if not spans:
        return None
    now = tracker_today(tracker)
    # The entity may be cut ("on" and "the 28th"): each span, else the whole message.
    paid = next(
        (d for d in (said_date(span, tracker, today=now, direction="past") for span in spans) if d),
        None,
    )
    if paid is None or paid > now:
        return None
    rest = text
    for span in spans:
        rest = re.sub(rf"(?<!\w){re.escape(span)}(?!\w)", " ", rest, flags=re.IGNORECASE)
    return paid, rest


# A transfer or cheque reference: a word of four characters or more with a digit in it
# ("VIR-88412", "1234567", "FR76-3000"); "by bank transfer on" has none, and a day ("28th",
# "28/11") is a date, not a reference.
_REFERENCE = re.compile(r"(?<![\w-])(?=[\w/-]*\d)[A-Za-z0-9][\w/-]{3,}")
_DAY = re.compile(r"^\d{1,2}(?:st|nd|rd|th|er|e|eme|ème)?$|^\d{1,2}[/.-]\d{1,2}(?:[/.-]\d{2,4})?$")


def reference_in(text: str) -> str | None:
    """The reference-looking word of `text`, if any."""
    found = next(
        (m.group(0) for m in _REFERENCE.finditer(text) if not _DAY.match(m.group(0))), None
    )
    return found[:80] if found else None


class ActionRecordAlreadyPaid(Action):
    def name(self) -> str:
        return "action_record_already_paid"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        reference = tracker.get_slot("payment_reference")
        paid_date = tracker.get_slot("paid_date")
        with unit_of_work() as session:
            debtor = debtor_of(session, tracker)
            if debtor is not None:
                now = today(debtor)
                if paid_date == UNKNOWN:
                    paid_date = None
                open_reconciliation_task(
                    session,
                    debtor_id=debtor.id,
                    claimed_date=paid_date,
                    reference=None if reference == UNKNOWN else reference,
                    source="bot",
                    today=now,
                )
                utter(
                    dispatcher,
                    "utter_already_paid_recorded",
                    paid_date=paid_date,
                    pause_until=(now + timedelta(days=PAUSE_DAYS)).isoformat(),
                )
        return [SlotSet("paid_date", None), SlotSet("payment_reference", None)]
