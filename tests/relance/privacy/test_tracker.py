"""The tracker purge reaches the store Rasa is configured with: the SQLite file under var/ or
RASA_TRACKER_STORE_URL (the PostgreSQL test database itself when the suite runs on PostgreSQL)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from relance.privacy.tracker import purge_conversations, tracker_store_url
from relance.settings import Settings, get_settings, normalise_database_url
from tests.relance.privacy.helpers import TRACKER_SCHEMA


@pytest.fixture
def store_url(monkeypatch: pytest.MonkeyPatch, settings: Settings, tmp_path: Path) -> Iterator[str]:
    url = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path / 'tracker.db'}"
    engine = create_engine(normalise_database_url(url), poolclass=NullPool)
    schema = (
        TRACKER_SCHEMA.replace("INTEGER PRIMARY KEY", "SERIAL PRIMARY KEY")
        if url.startswith("postgres")
        else TRACKER_SCHEMA
    )
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS events"))
        conn.execute(text(schema))
        for sender in ("debtor-1", "debtor-1", "debtor-2"):
            conn.execute(
                text("INSERT INTO events (sender_id, type_name, data) VALUES (:s, 'user', '{}')"),
                {"s": sender},
            )
    monkeypatch.setenv("RASA_TRACKER_STORE_URL", url)
    get_settings.cache_clear()
    yield url
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS events"))
    engine.dispose()


def test_purge_uses_the_configured_store(store_url: str) -> None:
    settings = get_settings()
    assert purge_conversations(settings, ["debtor-1", "debtor-9"]) == 2
    engine = create_engine(normalise_database_url(store_url), poolclass=NullPool)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT sender_id FROM events")).scalars().all() == ["debtor-2"]
    engine.dispose()


def test_missing_store_or_table_is_nothing_to_purge(settings: Settings, tmp_path: Path) -> None:
    assert tracker_store_url(settings) is None  # no SQLite file yet under var/
    assert purge_conversations(settings, ["debtor-1"]) == 0
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    (settings.var_dir / "rasa_tracker.db").touch()  # Rasa never started: no table
    assert purge_conversations(settings, ["debtor-1"]) == 0
