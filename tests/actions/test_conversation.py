"""Session start, handoff, fallback, opt-out, call-back, reminders."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from actions.contact import ActionScheduleCallback, ActionStopContact
from actions.fallback import ActionDefaultFallback
from actions.handoff import ActionHandoff, ActionResumeConversation
from actions.reminders import ActionSendReminder
from actions.session import ActionSessionStart
from relance.db.models import Contact, Handoff, Task
from tests.actions.conftest import make_tracker, responses, slots_for


def _slots(events: list[dict]) -> dict:
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def test_session_start_reads_metadata_and_discloses_once(dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    metadata = {
        "channel": "whatsapp",
        "language": "en",
        "debtor_id": str(owner.id),
        "conversation_id": str(conv.id),
    }
    tracker = make_tracker({"session_started_metadata": metadata, "identity_verified": None})
    events = ActionSessionStart().run(dispatcher, tracker, {})
    slots = _slots(events)
    assert slots["channel"] == "whatsapp" and slots["language"] == "en"
    assert slots["debtor_id"] == str(owner.id) and slots["segment"] == "consumer"
    assert slots["disclosed"] is True and responses(dispatcher) == ["utter_disclosure"]
    # rendered in the debtor's language and channel, not with the pre-session slots
    assert dispatcher.messages[0]["language"] == "en"
    assert dispatcher.messages[0]["channel"] == "whatsapp"
    assert events[0]["event"] == "session_started" and events[-1]["name"] == "action_listen"
    again = ActionSessionStart().run(
        dispatcher, make_tracker({"session_started_metadata": metadata, "disclosed": True}), {}
    )
    assert responses(dispatcher) == ["utter_disclosure"]  # not repeated
    assert _slots(again)["disclosed"] is True


def test_handoff_switches_to_human_with_reason(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    events = ActionHandoff().run(
        dispatcher,
        make_tracker(
            slots_for(owner, conv), text="je suis en dépression, je veux parler à quelqu'un"
        ),
        {},
    )
    handoff = db.scalars(select(Handoff).where(Handoff.conversation_id == conv.id)).one()
    assert handoff.reason == "vulnerability" and handoff.priority == 3
    db.refresh(conv)
    assert conv.mode == "human"
    assert dispatcher.messages[0]["custom"]["handoff"] is True
    assert _slots(events)["handed_off"] is True
    ActionResumeConversation().run(dispatcher, make_tracker(slots_for(owner, conv)), {})
    db.refresh(conv)
    assert conv.mode == "bot"


def test_fallback_twice_in_a_row_hands_off(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    first = ActionDefaultFallback().run(
        dispatcher, make_tracker(slots_for(owner, conv), text="blorf"), {}
    )
    assert responses(dispatcher) == ["utter_please_rephrase"]
    assert _slots(first)["fallback_count"] == 1
    history = [
        {"event": "action", "name": "utter_greet"},
        {"event": "user", "text": "x"},
        {"event": "action", "name": "action_default_fallback"},
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "y"},
    ]
    ActionDefaultFallback().run(
        dispatcher, make_tracker(slots_for(owner, conv), text="zzz", events=history), {}
    )
    assert responses(dispatcher)[-1] == "utter_handoff"
    assert (
        db.scalars(select(Handoff).where(Handoff.conversation_id == conv.id)).one().reason
        == "fallback"
    )


def test_stop_contact_opts_out_this_channel_once(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    tracker = make_tracker(slots_for(owner, conv))
    ActionStopContact().run(dispatcher, tracker, {})
    ActionStopContact().run(dispatcher, tracker, {})
    contact = db.scalars(select(Contact).where(Contact.debtor_id == owner.id)).one()
    assert contact.opted_out_at is not None
    assert responses(dispatcher) == ["utter_opted_out"]


def test_callback_task_at_the_date_said(db: Session, dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    tracker = make_tracker(
        slots_for(owner, conv),
        text="rappelez-moi demain",
        entities=[{"entity": "date", "value": "demain"}],
    )
    ActionScheduleCallback().run(dispatcher, tracker, {})
    task = db.scalars(select(Task).where(Task.kind == "callback")).one()
    assert task.due_at is not None and task.debtor_id == owner.id
    assert dispatcher.messages[0]["callback_at"].startswith(task.due_at.date().isoformat())


def test_reminder_uses_stage_and_link(dispatcher, debtor_setup) -> None:
    owner, conv = debtor_setup
    tracker = make_tracker(
        slots_for(owner, conv),
        intent="EXTERNAL_reminder",
        entities=[{"entity": "stage", "value": "firm"}],
    )
    events = ActionSendReminder().run(dispatcher, tracker, {})
    [message] = dispatcher.messages
    assert message["response"] == "utter_reminder_firm" and message["amount_minor"] == 30_000
    assert "/pay/" in message["pay_url"] and _slots(events)["stage"] == "firm"


def test_discreet_reminder_says_nothing_about_the_debt(dispatcher, debtor_setup, db) -> None:  # type: ignore[no-untyped-def]
    from relance.db.models import PaymentLink

    owner, conv = debtor_setup
    tracker = make_tracker(
        slots_for(owner, conv),
        intent="EXTERNAL_reminder",
        entities=[{"entity": "stage", "value": "firm"}, {"entity": "discreet", "value": "true"}],
    )
    events = ActionSendReminder().run(dispatcher, tracker, {})
    [message] = dispatcher.messages
    assert message["response"] == "utter_reminder_discreet"
    assert not {"amount_minor", "pay_url", "debtor_name", "invoice_refs"} & set(message)
    assert db.scalars(select(PaymentLink)).first() is None  # no link made for a stranger
    assert _slots(events)["stage"] == "firm"


def test_fallback_ends_the_turn_and_never_speaks_twice_in_one(
    db: Session, dispatcher, debtor_setup
) -> None:
    """The loop seen after the plan offer: the fallback ran ten times for one message."""
    owner, conv = debtor_setup
    turn = [
        {"event": "action", "name": "action_offer_plan"},
        {"event": "user", "text": "en 3 fois par mois"},
    ]
    first = ActionDefaultFallback().run(
        dispatcher, make_tracker(slots_for(owner, conv), text="en 3 fois par mois", events=turn), {}
    )
    assert {"event": "followup", "name": "action_listen"} in [
        {k: e.get(k) for k in ("event", "name")} for e in first
    ]
    assert responses(dispatcher) == ["utter_please_rephrase"]
    again = [*turn, {"event": "action", "name": "action_default_fallback"}]
    second = ActionDefaultFallback().run(
        dispatcher,
        make_tracker(slots_for(owner, conv), text="en 3 fois par mois", events=again),
        {},
    )
    assert responses(dispatcher) == ["utter_please_rephrase"]  # nothing more said
    assert [e["event"] for e in second] == ["followup"]
    assert db.scalars(select(Handoff).where(Handoff.conversation_id == conv.id)).first() is None


def test_reminder_gives_the_rf_reference_of_the_invoice_it_names(
    dispatcher, debtor_setup, db
) -> None:  # type: ignore[no-untyped-def]
    from relance.bank_statements import rf
    from relance.db.models import Invoice
    from relance.nlg.renderer import render
    from relance.nlg.templates_store import active_templates

    owner, conv = debtor_setup
    second = db.scalars(
        select(Invoice).where(Invoice.debtor_id == owner.id).order_by(Invoice.id.desc())
    ).first()
    tracker = make_tracker(
        slots_for(owner, conv),
        intent="EXTERNAL_reminder",
        entities=[
            {"entity": "stage", "value": "final"},
            {"entity": "invoice_refs", "value": [second.number]},
        ],
    )
    ActionSendReminder().run(dispatcher, tracker, {})
    [message] = dispatcher.messages
    reference = rf.printable(rf.for_invoice(second.id))
    assert message["payment_reference"] == reference
    variables = {k: v for k, v in message.items() if k not in ("response", "custom")}
    text = render(
        active_templates(db),
        "utter_reminder_final",
        language="fr",
        channel="sms",
        variables={**variables, "creditor_name": "Relance Demo SAS"},
    )
    assert f"Référence de virement : {reference}." in text


def test_debtor_and_channel_come_from_every_message_metadata() -> None:
    """A session begun by an outbound reminder (no metadata) had no debtor in its slots; a debtor
    moving from SMS to WhatsApp kept channel = sms. Each message's metadata now sets them."""
    from rasa_sdk import Tracker
    from rasa_sdk.events import SlotSet
    from rasa_sdk.executor import CollectingDispatcher

    from actions.session import ActionSyncMessageSlots

    def run(slots: dict, metadata: dict) -> list:
        latest = {"text": "x", "intent": {"name": "greet"}, "metadata": metadata}
        tracker = Tracker("debtor-7", slots, latest, [], False, None, {}, "action_listen")
        return ActionSyncMessageSlots().run(CollectingDispatcher(), tracker, {})

    message = {"channel": "whatsapp", "debtor_id": "7", "conversation_id": "3", "language": "en"}
    empty = {"debtor_id": None, "conversation_id": None, "channel": "sms", "language": None}
    assert run(empty, message) == [
        SlotSet("debtor_id", "7"),
        SlotSet("conversation_id", "3"),
        SlotSet("channel", "whatsapp"),
        SlotSet("language", "en"),
    ]
    same = {"debtor_id": "7", "conversation_id": "3", "channel": "whatsapp", "language": "en"}
    assert run(same, message) == []  # nothing new: no event
    external = {"is_external": True, "model_id": "m"}  # a triggered reminder's metadata
    assert run(same, external) == []
    assert run(empty, {**message, "language": "de"})[-1] == SlotSet("channel", "whatsapp")


def test_a_triggered_reminder_brings_its_debtor_as_entities() -> None:
    """Rasa's trigger_intent carries no metadata: the dispatcher sends who and where as entities."""
    from rasa_sdk import Tracker
    from rasa_sdk.events import SlotSet
    from rasa_sdk.executor import CollectingDispatcher

    from actions.session import ActionSyncMessageSlots

    entities = [
        {"entity": "stage", "value": "friendly"},
        {"entity": "debtor_id", "value": "7"},
        {"entity": "conversation_id", "value": "3"},
        {"entity": "channel", "value": "sms"},
        {"entity": "language", "value": "en"},
    ]
    latest = {
        "intent": {"name": "EXTERNAL_reminder"},
        "entities": entities,
        "metadata": {"is_external": True},
    }
    tracker = Tracker("debtor-7", {}, latest, [], False, None, {}, "action_listen")
    assert ActionSyncMessageSlots().run(CollectingDispatcher(), tracker, {}) == [
        SlotSet("debtor_id", "7"),
        SlotSet("conversation_id", "3"),
        SlotSet("channel", "sms"),
        SlotSet("language", "en"),
    ]


_AFTER_A_FALLBACK = [
    {"event": "action", "name": "utter_dispute_created"},
    {"event": "user", "text": "hein"},
    {"event": "action", "name": "action_default_fallback"},
    {"event": "action", "name": "action_listen"},
    {"event": "user", "text": "non rien d'autre"},
]


@pytest.mark.parametrize(
    ("text", "intent", "confidence"),
    [
        ("non rien d'autre", "deny", 0.97),
        ("oui", "affirm", 0.99),
        ("ok merci", "thank", 0.9),
        ("🙏", "nlu_fallback", 0.3),
        ("👍👍 !", "nlu_fallback", 0.3),
    ],
)
def test_an_acknowledgement_that_answers_no_question_is_acknowledged_not_handed_off(
    db: Session, dispatcher, debtor_setup, text: str, intent: str, confidence: float
) -> None:
    """Simulator: "non rien d'autre" after a dispute was registered, "oui" after a promise was
    recorded and "🙏" each got "Sorry, I didn't understand" (two in a row: a handoff)."""
    owner, conv = debtor_setup
    tracker = make_tracker(slots_for(owner, conv), text=text, events=_AFTER_A_FALLBACK)
    tracker.latest_message["intent"] = {"name": intent, "confidence": confidence}
    events = ActionDefaultFallback().run(dispatcher, tracker, {})
    assert responses(dispatcher) == ["utter_acknowledged"]
    assert _slots(events)["fallback_count"] == 0
    assert db.scalars(select(Handoff).where(Handoff.conversation_id == conv.id)).all() == []


@pytest.mark.parametrize(
    ("text", "intent", "confidence"),
    [("?", "nlu_fallback", 0.3), ("oui peut-être", "affirm", 0.55), ("blorf", "inform", 1.0)],
)
def test_a_weak_or_unclear_message_still_asks_to_rephrase(
    dispatcher, debtor_setup, text: str, intent: str, confidence: float
) -> None:
    owner, conv = debtor_setup
    tracker = make_tracker(slots_for(owner, conv), text=text)
    tracker.latest_message["intent"] = {"name": intent, "confidence": confidence}
    ActionDefaultFallback().run(dispatcher, tracker, {})
    assert responses(dispatcher) == ["utter_please_rephrase"]
