"""Engine and session factories.

Nothing is created at import time: processes call `get_engine()` / `get_sessionmaker()` once they
know their settings. Sessions are committed at the request or task boundary, never in services.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Delete, Engine, Update, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from relance.settings import get_settings


def make_engine(url: str) -> Engine:
    """Create an engine with sane defaults for SQLite (WAL, FKs, busy timeout) and PostgreSQL."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
            # pysqlite's own transaction handling breaks SAVEPOINTs; let SQLAlchemy emit BEGIN.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # IMMEDIATE: take the write lock up front so two writers queue (busy_timeout) instead
            # of failing on a read-to-write lock upgrade.
            conn.exec_driver_sql(
                "BEGIN" if url in ("sqlite://", "sqlite:///:memory:") else "BEGIN IMMEDIATE"
            )

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@lru_cache
def get_engine() -> Engine:
    settings = get_settings()
    if settings.effective_database_url.startswith("sqlite"):
        settings.var_dir.mkdir(parents=True, exist_ok=True)
    return make_engine(settings.effective_database_url)


@lru_cache
def get_sessionmaker() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """Unit of work for tasks and actions: commit on success, roll back on error."""
    session = get_sessionmaker()()
    try:
        yield session
        session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()


def rowcount(session: Session, statement: Update | Delete) -> int:
    """How many rows an UPDATE or DELETE matched. Its result is a CursorResult (it has the
    count), which Session.execute's signature does not say: SQLAlchemy's documentation casts it."""
    result = cast(CursorResult[Any], session.execute(statement))
    return int(result.rowcount or 0)
