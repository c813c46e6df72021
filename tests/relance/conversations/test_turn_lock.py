"""The turn and message-owner locks on the suite's database (SQLite file: flock; PostgreSQL:
advisory locks). Across processes: tests/messaging/test_turns_across_processes.py."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from relance.conversations.turn_lock import conversation_turn, has_live_owner, message_owner


def _elsewhere(fn):  # type: ignore[no-untyped-def]
    """Run `fn` on another thread (another request of the same process) and return its result."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result(timeout=30)


def _try_turn(engine: Engine, conversation_id: int, timeout: float = 0) -> bool:
    with Session(engine) as session, conversation_turn(session, conversation_id, timeout) as owned:
        return owned


def test_one_turn_at_a_time_even_within_one_thread(engine: Engine) -> None:
    with Session(engine) as session:
        with conversation_turn(session, 4101, 0) as owned:
            assert owned
            assert not _elsewhere(lambda: _try_turn(engine, 4101, 0.2))
            with conversation_turn(session, 4101, 0) as again:
                assert not again, "a turn is not re-entrant, not even for its own holder"
            assert _elsewhere(lambda: _try_turn(engine, 4102)), "other conversations are free"
        assert _elsewhere(lambda: _try_turn(engine, 4101))


def test_a_waiting_turn_gets_the_lock_when_it_is_released(engine: Engine) -> None:
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with Session(engine) as session, conversation_turn(session, 4103, 0) as owned:
            assert owned
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        assert not _try_turn(engine, 4103)
        threading.Timer(0.3, release.set).start()
        assert _try_turn(engine, 4103, timeout=10), "the waiter gets it once released"
    finally:
        release.set()
        holder.join(10)


def test_a_message_has_a_live_owner_only_while_its_request_runs(engine: Engine) -> None:
    with Session(engine) as session:
        assert not has_live_owner(session, 4201)
        with message_owner(session, 4201):
            assert _elsewhere(lambda: has_live_owner(Session(engine), 4201))
            assert not _elsewhere(lambda: has_live_owner(Session(engine), 4202))
        assert not _elsewhere(lambda: has_live_owner(Session(engine), 4201))


def test_owner_and_turn_of_one_request_share_one_lock_connection(engine: Engine) -> None:
    """PostgreSQL: each lock used to take its own pooled connection for the whole turn."""
    checked_out = getattr(engine.pool, "checkedout", lambda: 0)
    with Session(engine) as session:
        before = checked_out()
        with message_owner(session, 4301), conversation_turn(session, 4302, 0) as owned:
            assert owned
            assert checked_out() - before <= 1
