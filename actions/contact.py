"""Opt-out on the current channel and call-back requests."""

from __future__ import annotations

from datetime import UTC, datetime, time

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions._common import (
    conversation_of,
    debtor_of,
    latest_entity,
    said_date,
    today,
    unit_of_work,
    utter,
)
from relance.contacts.service import opt_out
from relance.db.models import Task
from relance.identity import repository as identity_repository


class ActionStopContact(Action):
    """stop_contact: opt out of this channel (confirmed once; a repeat says nothing new)."""

    def name(self) -> str:
        return "action_stop_contact"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        channel = tracker.get_slot("channel")
        changed = False
        with unit_of_work() as session:
            conversation = conversation_of(session, tracker)
            if conversation is not None and channel:
                address = identity_repository.last_inbound_address(
                    session, conversation.id, channel
                )
                contact = identity_repository.find_contact(
                    session, conversation.debtor_id, channel, address
                )
                if contact is not None:
                    changed = opt_out(session, contact, source=channel, keyword=None)
        if changed or conversation is None:
            utter(dispatcher, "utter_opted_out")
        return []


class ActionScheduleCallback(Action):
    """call_back_later: a call-back task for the date said (9:00 local by default)."""

    def name(self) -> str:
        return "action_schedule_callback"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        with unit_of_work() as session:
            debtor = debtor_of(session, tracker)
            now = today(debtor)
            when = said_date(latest_entity(tracker, "date"), tracker, today=now)
            due = datetime.combine(when, time(9, 0), UTC) if when else None
            session.add(
                Task(
                    kind="callback",
                    debtor_id=debtor.id if debtor else None,
                    due_at=due,
                    details={
                        "channel": tracker.get_slot("channel"),
                        "asked": tracker.latest_message.get("text"),
                    },
                )
            )
        utter(dispatcher, "utter_callback_scheduled", callback_at=due.isoformat() if due else None)
        return []
