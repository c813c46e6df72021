"""The conversation of a debtor is created once, even when two first messages race (two api
processes). Real commits on the shared engine, like the concurrent dispatch test; cleans up."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import sessionmaker

from relance.conversations.repository import conversation_for_debtor
from relance.db.models import Conversation, Debtor
from tests.support.purge import purge_debtors


@pytest.mark.postgres
def test_two_first_messages_at_once_share_one_conversation(engine: Engine) -> None:
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory() as session:
        debtor = Debtor(customer_number="RACE-1", name="Rita Race", language="fr")
        session.add(debtor)
        session.commit()
    try:
        winner_session, loser_session = factory(), factory()
        winner = conversation_for_debtor(winner_session, winner_session.get(Debtor, debtor.id))
        # Not committed yet: the loser does not see it, inserts too and must wait for the winner.
        loser: list[Conversation] = []
        errors: list[BaseException] = []

        def lose() -> None:
            try:
                found = conversation_for_debtor(loser_session, loser_session.get(Debtor, debtor.id))
                loser_session.commit()
                loser.append(found)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        thread = threading.Thread(target=lose)
        thread.start()
        thread.join(timeout=1)  # let it block on the winner's uncommitted row
        winner_session.commit()
        thread.join(timeout=30)
        assert not errors, errors
        assert loser and loser[0].id == winner.id
        assert loser[0].sender_id == f"debtor-{debtor.id}"
        winner_session.close()
        loser_session.close()
    finally:
        with factory() as session:
            purge_debtors(session, [debtor.id])
