"""Shared fixtures: settings for tests, one DB per run, each test inside a rolled-back transaction.

Set TEST_DATABASE_URL (or DATABASE_URL) to run the suite on PostgreSQL; the default is a SQLite
file in a temporary folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from relance.db import session as db_session
from relance.db.base import Base
from relance.settings import Settings, get_settings

TEST_ENV = {
    "ENVIRONMENT": "test",
    "PUBLIC_BASE_URL": "http://testserver",
    "TWILIO_ACCOUNT_SID": "ACtest00000000000000000000000000",
    "TWILIO_AUTH_TOKEN": "test-twilio-auth-token",
    "STRIPE_WEBHOOK_SECRET": "whsec_test_secret",
    "SECRET_KEY": "test-secret-key",
    "RASA_URL": "http://127.0.0.1:9",  # nothing listens: tests that need Rasa fake it explicitly
    "RASA_TIMEOUT_SECONDS": "2",
}


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker gets its own PostgreSQL database (`<name>_gw0`, …).

    Tests drop and create the schema and some use derived databases (`_migrations`, `_e2e`); two
    workers on one database would tear down each other's tables. Rewriting TEST_DATABASE_URL once,
    before any test module reads it, moves every derived database along. SQLite needs nothing:
    each worker already has its own temporary folder.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not worker or not url.startswith("postgres"):
        return
    from sqlalchemy.engine import make_url

    from relance.db.provision import ensure_postgres_database

    parsed = make_url(url)
    mine = parsed.set(database=f"{parsed.database or 'relance_test'}_{worker}")
    rendered = mine.render_as_string(hide_password=False)
    ensure_postgres_database(rendered)
    os.environ["TEST_DATABASE_URL"] = rendered


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep each real-process stack on one xdist worker (`--dist loadgroup`): the e2e tests share
    one session-scoped stack (Rasa loads its model for minutes) and so do the browser tests; split
    across workers, each would start its own. Without xdist (`-p no:xdist`, a single test run by
    hand) the marker is unknown and --strict-markers would refuse it: nothing to group then."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        for group in ("e2e", "browser"):
            if item.get_closest_marker(group) is not None:
                item.add_marker(pytest.mark.xdist_group(group))
                break


def _database_url(tmp_root: Path) -> str:
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL") or ""
    if url:
        from relance.settings import normalise_database_url

        return normalise_database_url(url)
    return f"sqlite:///{tmp_root / 'test.db'}"


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    import relance.db.models  # noqa: F401  (fills Base.metadata)

    engine = db_session.make_engine(_database_url(tmp_path_factory.mktemp("db")))
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Settings]:
    """Test settings from the environment; tests may monkeypatch more env and call get_settings()."""
    for key, value in TEST_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def db(engine: Engine, monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Iterator[Session]:
    """A session inside an outer transaction that is rolled back after the test.

    Code under test that opens its own sessions (request dependency, session_scope in actions and
    tasks) gets sessions bound to the same connection, so it sees the test's data and its commits
    become savepoint releases.
    """
    connection = engine.connect()
    outer = connection.begin()
    factory = sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    monkeypatch.setattr(db_session, "get_sessionmaker", lambda: factory)
    session = factory()
    try:
        yield session
    finally:
        session.close()
        if outer.is_active:
            outer.rollback()
        connection.close()


@pytest.fixture
def client(db: Session, settings: Settings) -> Iterator[TestClient]:
    from relance.app import create_app

    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client
