"""Helpers shared by the actions: unit of work, debtor lookup, language, wording variables."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, Protocol

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from relance.compliance.windows import zone
from relance.db.models import Conversation, Debtor
from relance.db.session import session_scope
from relance.identity import repository as identity_repository
from relance.nlg.turn_context import turn_language
from relance.settings import get_settings


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """One transaction per action run: services never commit, the action boundary does."""
    with session_scope() as session:
        yield session


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
