"""The Alembic migrations and the models describe the same schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

import relance.db.models  # noqa: F401
from relance.db.base import Base
from relance.db.migrate import upgrade_to_head
from relance.db.session import make_engine
from relance.settings import normalise_database_url


def _fresh_url(tmp_path: Path) -> str:
    pg = os.environ.get("TEST_DATABASE_URL", "")
    if pg.startswith("postgres"):
        from sqlalchemy.engine import make_url

        from relance.db.provision import ensure_postgres_database

        url = make_url(normalise_database_url(pg))
        url = url.set(database=f"{url.database}_migrations").render_as_string(hide_password=False)
        ensure_postgres_database(url)
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
        return url
    return f"sqlite:///{tmp_path / 'migrated.db'}"


def test_upgrade_head_matches_models(tmp_path: Path, settings: object) -> None:
    url = _fresh_url(tmp_path)
    upgrade_to_head(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert diff == [], f"models and migrations differ: {diff}"
    assert set(Base.metadata.tables) <= tables
