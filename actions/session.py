"""Session start: read the api's metadata into slots and disclose the automated assistant once."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions._common import debtor_of, unit_of_work, utter
from relance.db.models.enums import Segment
from relance.languages import LANGUAGES

METADATA_SLOTS = ("channel", "language", "debtor_id", "conversation_id", "stage", "tone")
NOT_CARRIED = ("session_started_metadata", "requested_slot")


class ActionSessionStart(Action):
    def name(self) -> str:
        return "action_session_start"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        events: list[EventType] = [SessionStarted()]
        # carry_over_slots_to_new_session: keep what we knew (identity, disclosure, language).
        for name, value in tracker.slots.items():
            if value is not None and name not in NOT_CARRIED:
                events.append(SlotSet(name, value))
        metadata: dict[str, Any] = tracker.get_slot("session_started_metadata") or {}
        values = {k: str(metadata[k]) for k in METADATA_SLOTS if metadata.get(k) not in (None, "")}
        if values.get("language") not in LANGUAGES:
            values.pop("language", None)
        if values.get("tone") not in ("courteous", "neutral", "firm"):
            values.pop("tone", None)
        events.extend(SlotSet(k, v) for k, v in values.items())
        debtor_id = values.get("debtor_id") or tracker.get_slot("debtor_id")
        if debtor_id:
            with unit_of_work() as session:
                fake = _SlotView(tracker, {"debtor_id": debtor_id})
                debtor = debtor_of(session, fake)
                if debtor is not None:
                    segment = "b2b" if debtor.segment == Segment.B2B else "consumer"
                    events.append(SlotSet("segment", segment))
        if metadata.get("channel") and not tracker.get_slot("disclosed"):
            # Passed as arguments: Rasa renders this reply with the tracker as it was before the
            # SlotSet events above, so an English debtor's disclosure came out in the default
            # language (French).
            wording: dict[str, Any] = {
                k: values[k] for k in ("language", "channel", "tone") if k in values
            }
            utter(dispatcher, "utter_disclosure", **wording)
            events.append(SlotSet("disclosed", True))
        events.append(ActionExecuted("action_listen"))
        return events


class _SlotView:
    """A tracker stand-in whose slots are overridden (the metadata is not applied yet)."""

    def __init__(self, tracker: Tracker, overrides: dict[str, Any]) -> None:
        self._tracker, self._overrides = tracker, overrides
        self.sender_id = tracker.sender_id

    def get_slot(self, name: str) -> Any:
        return self._overrides.get(name, self._tracker.get_slot(name))


# Filled from each debtor message's metadata, or a triggered reminder's entities (see below).
MESSAGE_SLOTS = ("debtor_id", "conversation_id", "channel", "language")


class ActionSyncMessageSlots(Action):
    """The custom slot mapping of debtor_id, conversation_id, channel and language: run by Rasa's
    slot extraction after every user message and every triggered intent, before any prediction.

    `action_session_start` alone was not enough. A session that begins with a triggered intent
    (the outbound reminder: Rasa's trigger_intent carries no metadata) had no debtor in its slots,
    so the debtor's first answer to the identity question "failed" (no record to compare with)
    and went to a collector, and the reminder came in the default language. A debtor moving from
    SMS to WhatsApp in one session kept channel = sms (an opt-out said on WhatsApp would have
    opted out the SMS number). A debtor message brings these values as metadata; the dispatcher
    sends them with the reminder as entities.
    """

    def name(self) -> str:
        return "action_sync_message_slots"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        latest = tracker.latest_message or {}
        metadata: dict[str, Any] = latest.get("metadata") or {}
        given = {e.get("entity"): e.get("value") for e in latest.get("entities") or []}
        events: list[EventType] = []
        for name in MESSAGE_SLOTS:
            value = metadata.get(name) if metadata.get(name) not in (None, "") else given.get(name)
            if value in (None, "") or (name == "language" and value not in LANGUAGES):
                continue
            if str(value) != tracker.get_slot(name):
                events.append(SlotSet(name, str(value)))
        return events
