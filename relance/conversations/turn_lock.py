"""One turn at a time per conversation, without holding a database transaction.

The assistant's actions write to the database during a turn (identity verified, dispute created,
handoff...). If the api kept its own write transaction open while waiting for Rasa, those writes
would block on it (SQLite locks the whole file; PostgreSQL the conversation row) until the call
timed out. So turns are serialised by a lock outside any transaction:

- PostgreSQL: a session-level advisory lock on a dedicated autocommit connection, which works
  across api processes and machines;
- SQLite: an in-process lock per conversation (SQLite deployments run one api process).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

ADVISORY_NAMESPACE = 0x52454C  # "REL": keeps our keys apart from other advisory-lock users

_local_guard = threading.Lock()
_local_locks: dict[tuple[str, int], threading.Lock] = {}


def _engine(session: Session) -> Engine:
    bind = session.get_bind()
    return bind.engine if isinstance(bind, Connection) else bind


@contextmanager
def conversation_turn(session: Session, conversation_id: int, timeout: float) -> Iterator[bool]:
    """Yield True once this process owns the conversation's turn, False after `timeout` seconds."""
    engine = _engine(session)
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, conversation_id, timeout) as acquired:
            yield acquired
        return
    with _local_guard:
        lock = _local_locks.setdefault((str(engine.url), conversation_id), threading.Lock())
    acquired = lock.acquire(timeout=timeout)
    try:
        yield acquired
    finally:
        if acquired:
            lock.release()


@contextmanager
def _advisory_lock(engine: Engine, conversation_id: int, timeout: float) -> Iterator[bool]:
    params = {"ns": ADVISORY_NAMESPACE, "id": conversation_id}
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        deadline = time.monotonic() + timeout
        acquired = False
        while True:
            acquired = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:ns, :id)"), params))
            if acquired or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        try:
            yield acquired
        finally:
            if acquired:
                _unlock(conn, params)


def _unlock(conn: Connection, params: dict[str, int]) -> None:
    try:
        conn.execute(text("SELECT pg_advisory_unlock(:ns, :id)"), params)
    except DBAPIError as exc:
        # A session-level lock dies with its connection: after a database restart or a
        # terminated backend there is nothing left to release, and the turn's own outcome (or
        # error) is what the caller must see, not this one.
        if not exc.connection_invalidated:
            raise
