"""Helpers shared by the actions: unit of work, debtor lookup, language, wording variables."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, Protocol

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from bot.components.evidence import CONFIRM_INTENT
from relance.compliance.windows import zone
from relance.db.models import Conversation, Debtor
from relance.db.session import session_scope
from relance.identity import repository as identity_repository
from relance.nlg.turn_context import turn_language
from relance.nlu_normalise import Direction, anchored_date, parse_date
from relance.plans import repository as plans_repository
from relance.settings import get_settings

_open_units = threading.local()


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """One transaction per action run: services never commit, the action boundary does.

    Never nested: on SQLite every transaction takes the write lock first (BEGIN IMMEDIATE), so a
    second unit opened inside a first one in the same thread waits for a lock its own thread
    holds until the busy timeout ("database is locked", the assistant unavailable). Tests share
    one connection and would never see that wait: the nesting itself is refused, here.
    """
    if getattr(_open_units, "depth", 0):
        raise RuntimeError("unit_of_work() opened inside another one: pass the session down")
    _open_units.depth = 1
    try:
        with session_scope() as session:
            yield session
    finally:
        _open_units.depth = 0


def language(tracker: Tracker) -> str:
    """The language of this turn (the debtor may have switched since the session started)."""
    return turn_language(
        tracker.get_slot("language"), tracker.latest_message, get_settings().default_language
    )


def today(debtor: Debtor | None = None) -> date:
    """Today in the debtor's time zone (a promise 'for Friday' is the debtor's Friday)."""
    return datetime.now(zone(debtor.timezone if debtor is not None else None)).date()


def tracker_today(tracker: Tracker) -> date:
    """Today for the debtor of this conversation ("hier" at 00:30 in Paris is 23:30 UTC's today)."""
    with unit_of_work() as session:
        return today(debtor_of(session, tracker))


class SlotReader(Protocol):
    """What `debtor_of` reads: a tracker, or a view of one with some slots overridden."""

    def get_slot(self, key: str, /) -> Any: ...


def debtor_of(session: Session, tracker: SlotReader) -> Debtor | None:
    return identity_repository.get_debtor(session, tracker.get_slot("debtor_id"))


def filled_slot(tracker: Tracker, name: str) -> Any:
    """A slot that this action's form has filled: if it is empty, the stories are wrong, so say
    which slot rather than fail on None further down (int(None), a NULL column)."""
    value = tracker.get_slot(name)
    if value is None:
        raise LookupError(f"slot {name!r} is not filled")
    return value


def conversation_of(session: Session, tracker: Tracker) -> Conversation | None:
    return identity_repository.get_conversation(
        session, conversation_id=tracker.get_slot("conversation_id"), sender_id=tracker.sender_id
    )


def latest_text(tracker: Tracker) -> str:
    return str(tracker.latest_message.get("text") or "")


def said_date(
    value: Any, tracker: Tracker, *, today: date, direction: Direction = "future"
) -> date | None:
    """The date in `value` (a slot's or an entity's text), else in the whole message.

    DIET's entity extraction sometimes cuts a date in pieces ("fin du mois alors" gave the
    entity "fin du"): seen in the simulator, the promise form then answered "I couldn't read
    that date" to "fin du mois" three times. The message as a whole is the second reading.

    A date the message says whole (a day with its month, a day of next month, the end of the
    month) wins over a piece of it: "100 bucks the 3rd of next month" gave 'the 3rd of' (this
    month's 3rd, then refused as too late) and "the 15th of january" gave 'the 15th' (15
    December): a month said is never dropped."""
    lang = language(tracker)
    text = latest_text(tracker)
    whole = anchored_date(text, lang, today=today, direction=direction)
    if whole is not None and (
        not value or anchored_date(str(value), lang, today=today, direction=direction) is None
    ):
        return whole
    read = parse_date(str(value), lang, today=today, direction=direction) if value else None
    if read is None:
        read = parse_date(text, lang, today=today, direction=direction)
    return read


# Labels the NLU gives a message that is not about the debt: off-topic, unsure (FallbackClassifier),
# and "why do you need my postcode?" (a question about the question, never an answer to it).
# A greeting is no answer either: a debtor back hours later says "hi" to a form still waiting.
NOT_AN_ANSWER_INTENTS = frozenset({"out_of_scope", "nlu_fallback", "ask_why_identity", "greet"})
# A bare figure ("75011", "1 234,56 €", "12/03/1985"): an answer whatever DIET made of it.
_BARE_FIGURE = re.compile(r"^[\d\s.,/:'€$£%+-]*\d[\d\s.,/:'€$£%+-]*$")


def bare_figure(text: str) -> bool:
    """A message that is only a figure: a postcode, an amount, a date typed as digits."""
    return bool(_BARE_FIGURE.match(text.strip()))


def not_an_answer(tracker: Tracker, *own_intents: str) -> bool:
    """Whether the latest message must not fill the slot a form asked for.

    A form's from_text and from_entity mappings take whatever the debtor types next: "le train
    de samedi" would become a promise date, "quelle heure est-il ?" a payment reference or a
    dispute's details. A message the NLU labels out_of_scope or nlu_fallback is no answer, nor
    one the ConsequenceGuard held back (CONFIRM_INTENT) for an intent foreign to this form (a
    weak opt-out in the middle of a promise); a weak reading of the form's own intent
    (`own_intents`: "vendredi" read as promise_to_pay in the promise form) is an answer in
    context. The validators then leave the slot empty and the form asks its question again.
    A bare figure is always an answer: DIET has little to go on in "1 234,56" and may fall back.
    """
    message = tracker.latest_message or {}
    if bare_figure(str(message.get("text") or "")):
        return False
    intent = (message.get("intent") or {}).get("name")
    if intent in NOT_AN_ANSWER_INTENTS:
        return True
    if intent != CONFIRM_INTENT:
        return False
    for entry in message.get("intent_ranking") or []:
        name = entry.get("name")
        if name not in (CONFIRM_INTENT, "nlu_fallback"):
            return name not in own_intents  # the guarded intent, first under the label
    return True


def latest_entity(tracker: Tracker, entity: str) -> str | None:
    values = list(tracker.get_latest_entity_values(entity))
    return str(values[0]) if values else None


def wording_variables() -> dict[str, Any]:
    settings = get_settings()
    return {"creditor_name": settings.creditor_name, "creditor_phone": settings.creditor_phone}


def utter(
    dispatcher: CollectingDispatcher,
    response: str,
    *,
    custom: dict[str, Any] | None = None,
    **variables: Any,
) -> None:
    """Name a response for the NLG endpoint; `custom` reaches the channel (e.g. a link to text)."""
    dispatcher.utter_message(
        response=response, json_message=custom, **{**wording_variables(), **variables}
    )


def next_installment_variables(session: Session, debtor_id: int) -> dict[str, Any]:
    """The wording variables of a running plan's next installment (None when no plan runs): on a
    plan, what the debtor pays next is that installment, whatever the invoices' own due dates."""
    upcoming = plans_repository.next_installment(session, debtor_id)
    return {
        "next_installment_minor": upcoming.amount_minor - upcoming.paid_minor if upcoming else None,
        "next_installment_date": upcoming.due_date.isoformat() if upcoming else None,
    }


def running_plan_variables(session: Session, tracker: Tracker) -> dict[str, Any]:
    """Where a verified debtor's running plan stands (its currency and next instalment), said
    beside a reply that did not understand the message: right after agreeing a plan, "when do i
    start" / "when is the first one" is read as off-topic or as a stray date, and the next
    instalment is what a debtor on a plan most needs to know then. Empty before the identity
    check, inside a form (its question follows) and when no plan runs."""
    if not tracker.get_slot("identity_verified") or (tracker.active_loop or {}).get("name"):
        return {}
    debtor = debtor_of(session, tracker)
    plan = plans_repository.live_plan(session, debtor.id) if debtor else None
    if plan is None:
        return {}
    return {"currency": plan.currency, **next_installment_variables(session, plan.debtor_id)}


# Actions that run between two user turns without being the bot's answer.
_QUIET = {"action_listen", "action_extract_slots", "action_session_start"}


def previous_action(tracker: Tracker, *, applied: bool = False) -> str | None:
    """The bot's last action before the latest user message (None at the start). `applied`:
    among the events still applied, so a message replayed after a confirmation question (both
    user turns reverted, actions/confirmation.py replay) answers what the bot said before that
    question, not the question itself."""
    seen_user = False
    for event in reversed(tracker.applied_events() if applied else tracker.events):
        if event.get("event") == "user":
            if seen_user:
                continue
            seen_user = True
        elif seen_user and event.get("event") == "action" and event.get("name") not in _QUIET:
            return str(event.get("name"))
    return None
