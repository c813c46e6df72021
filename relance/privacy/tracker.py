"""Delete a conversation's events from Rasa's tracker store.

Rasa 3.6 keeps each conversation as rows of one table, `events` (`SQLTrackerStore.SQLEvent`:
id, sender_id, type_name, timestamp, intent_name, action_name, data), where `data` is the JSON
of the event: every user text, bot text and slot value. Rasa's HTTP API has no call that deletes
a conversation, so we delete the rows in the store itself: the SQLite file under var/ by default,
or the database of RASA_TRACKER_STORE_URL.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, delete, inspect
from sqlalchemy.pool import NullPool

from relance.settings import Settings, normalise_database_url

TRACKER_TABLE = "events"
_events = Table(
    TRACKER_TABLE,
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255)),
)


def tracker_store_url(settings: Settings) -> str | None:
    """The tracker store's SQLAlchemy URL, or None when its SQLite file does not exist yet."""
    if settings.rasa_tracker_store_url:
        return normalise_database_url(settings.rasa_tracker_store_url)
    path = Path(settings.var_dir) / "rasa_tracker.db"
    return f"sqlite:///{path}" if path.is_file() else None


def purge_conversations(settings: Settings, sender_ids: Iterable[str]) -> int:
    """Delete every tracker event of these conversations; returns how many rows went."""
    senders = sorted({s for s in sender_ids if s})
    url = tracker_store_url(settings)
    if not senders or url is None:
        return 0
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            if not inspect(connection).has_table(TRACKER_TABLE):
                return 0
            result = connection.execute(delete(_events).where(_events.c.sender_id.in_(senders)))
            return int(result.rowcount or 0)
    finally:
        engine.dispose()
