"""One turn at a time per conversation, across processes, without holding a database transaction.

The assistant's actions write to the database during a turn (identity verified, dispute created,
handoff...). If the api kept its own write transaction open while waiting for Rasa, those writes
would block on it (SQLite locks the whole file; PostgreSQL the conversation row) until the call
timed out. So turns are serialised by locks outside any transaction, of two kinds:

- the conversation's turn (`conversation_turn`): whoever holds it is the only one talking to the
  assistant for that debtor;
- a message's owner (`message_owner`): the request that stored an inbound message holds it until
  it has answered, or given up on, that message. The worker's replay takes only messages nobody
  owns (`has_live_owner`): a message that is merely "pending" may be one a request is about to
  answer, and replaying it would send the debtor a second or stray reply;
- an outbound message's sender (`sending`): the e-mail gateway holds it from before the commit
  of its `queued` claim until the server's answer is recorded. The reply retry's sweep of replies
  left queued (`reply_retry.recover_unsent`) passes over a row whose sender is alive.

The api and the worker are separate processes, so both locks must hold across processes and die
with their holder (a crashed process must not block a conversation for good):

- PostgreSQL: session-level advisory locks on a dedicated autocommit connection (any number of
  processes and machines; released by the server when the connection dies);
- SQLite file: `flock` on one file per conversation / per owned message, in a folder next to the
  database file (every process that shares the database shares the folder; the kernel releases a
  dead process's locks);
- SQLite in memory (one process by nature): in-process locks.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

ADVISORY_NAMESPACE = 0x52454C  # "REL": keeps our keys apart from other advisory-lock users
MESSAGE_NAMESPACE = 0x52454D  # "REM": message owners, apart from conversation turns
POLL_SECONDS = 0.05
CONVERSATION, MESSAGE = "conversation", "message"

_thread = threading.local()
_local_guard = threading.Lock()
_local_locks: dict[tuple[str, str, int], threading.Lock] = {}


def _engine(session: Session) -> Engine:
    bind = session.get_bind()
    return bind.engine if isinstance(bind, Connection) else bind


@contextmanager
def conversation_turn(session: Session, conversation_id: int, timeout: float) -> Iterator[bool]:
    """Yield True once this caller owns the conversation's turn, False after `timeout` seconds
    (0: a single try, for the worker, which must not wait behind a live turn)."""
    with _hold(_engine(session), CONVERSATION, conversation_id, timeout) as acquired:
        yield acquired


@contextmanager
def message_owner(session: Session, message_id: int) -> Iterator[None]:
    """Mark the calling request as the live owner of an inbound message until the block ends.

    Take it before the message's first commit: the message is never visible unowned while its
    request is alive. Nobody else ever waits for it, so it is free at once.
    """
    with _hold(_engine(session), MESSAGE, message_id, 0) as acquired:
        if not acquired:
            raise RuntimeError(f"message {message_id} already has an owner")
        yield


@contextmanager
def sending(session: Session, message_id: int) -> Iterator[bool]:
    """Mark the calling process as sending outbound message `message_id` until the block ends
    (`has_live_owner` then answers True). Take it before the commit that makes the row visible
    as `queued`. Yields whether it was taken: the send goes ahead either way (only a momentary
    probe could hold it; the sweep also waits for the claim to be old)."""
    with _hold(_engine(session), MESSAGE, message_id, 0) as acquired:
        yield acquired


def has_live_owner(session: Session, message_id: int) -> bool:
    """Whether a live request still owns this message (the replay must leave it alone), or a
    live process is still sending it (`sending`)."""
    engine = _engine(session)
    if engine.dialect.name == "postgresql":
        # A connection of its own: advisory locks are re-entrant within one connection.
        with (
            engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
            _advisory(conn, MESSAGE, message_id, 0) as acquired,
        ):
            return not acquired
    folder = _lock_folder(engine)
    if folder is None:
        return _local_lock(engine, MESSAGE, message_id).locked()
    return _file_owned(folder / MESSAGE / f"{message_id}.lock")


@contextmanager
def _hold(engine: Engine, kind: str, key: int, timeout: float) -> Iterator[bool]:
    if engine.dialect.name == "postgresql":
        # Advisory locks are re-entrant within a connection, and the thread's connection is
        # shared: a lock this thread already holds must read as taken, as it does elsewhere.
        mine: set[tuple[str, int]] = _thread.__dict__.setdefault("keys", set())
        if (kind, key) in mine:
            yield False
            return
        with _lock_connection(engine) as conn, _advisory(conn, kind, key, timeout) as acquired:
            if acquired:
                mine.add((kind, key))
            try:
                yield acquired
            finally:
                mine.discard((kind, key))
        return
    folder = _lock_folder(engine)
    if folder is not None:
        with _flock(folder / kind / f"{key}.lock", timeout, remove=kind == MESSAGE) as acquired:
            yield acquired
        return
    lock = _local_lock(engine, kind, key)
    acquired = lock.acquire(timeout=timeout) if timeout > 0 else lock.acquire(blocking=False)
    try:
        yield acquired
    finally:
        if acquired:
            lock.release()


def _local_lock(engine: Engine, kind: str, key: int) -> threading.Lock:
    with _local_guard:
        return _local_locks.setdefault((str(engine.url), kind, key), threading.Lock())


def _lock_folder(engine: Engine) -> Path | None:
    """`<database file>.locks`, or None for an in-memory database (no other process can see it)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):  # URI form: the path is before any query string
        database = database[5:].split("?", 1)[0]
    path = Path(database).resolve()
    return path.with_name(path.name + ".locks")


@contextmanager
def _flock(path: Path, timeout: float, *, remove: bool) -> Iterator[bool]:
    """An exclusive `flock` on `path`: per open file, so two threads of one process exclude each
    other as two processes do; released by the kernel if the holder dies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    acquired = False
    try:
        deadline = time.monotonic() + timeout
        while True:
            acquired = _try_flock(fd)
            if acquired or time.monotonic() >= deadline:
                break
            time.sleep(POLL_SECONDS)
        yield acquired
    finally:
        if acquired and remove:
            # A message's file lives while its owner does: the replay reads "no file" as "no
            # owner". Removed while still locked, so nobody sees it free before it is gone.
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if acquired:
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _file_owned(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        if not _try_flock(fd):
            return True
        # Left by a crashed owner: nobody holds it any more; tidy it away.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise
    return True


@contextmanager
def _lock_connection(engine: Engine) -> Iterator[Connection]:
    """The thread's autocommit connection for advisory locks: a request that owns its message
    and then takes the conversation's turn holds both on one connection, not two of the pool."""
    held: dict[Engine, Connection] = _thread.__dict__.setdefault("connections", {})
    if engine in held:
        yield held[engine]
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        held[engine] = conn
        try:
            yield conn
        finally:
            del held[engine]


@contextmanager
def _advisory(conn: Connection, kind: str, key: int, timeout: float) -> Iterator[bool]:
    namespace = MESSAGE_NAMESPACE if kind == MESSAGE else ADVISORY_NAMESPACE
    params = {"ns": namespace, "id": key}
    deadline = time.monotonic() + timeout
    acquired = False
    while True:
        acquired = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:ns, :id)"), params))
        if acquired or time.monotonic() >= deadline:
            break
        time.sleep(POLL_SECONDS)
    try:
        yield acquired
    finally:
        if acquired:
            _unlock(conn, params)


def _unlock(conn: Connection, params: dict[str, int]) -> None:
    if conn.invalidated:  # already found dead (by a lock released before this one on it)
        return
    try:
        conn.execute(text("SELECT pg_advisory_unlock(:ns, :id)"), params)
    except DBAPIError as exc:
        # A session-level lock dies with its connection: after a database restart or a
        # terminated backend there is nothing left to release, and the turn's own outcome (or
        # error) is what the caller must see, not this one.
        if not exc.connection_invalidated:
            raise
