"""Two dispatchers racing over the same planned groups must send each stage once per invoice.

Runs on whatever database the suite uses: PostgreSQL when TEST_DATABASE_URL points at it (row
locks + conditional UPDATE), SQLite otherwise (the same test, threads serialised by the write
lock). Uses real commits on the shared engine, so it cleans up after itself.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import sessionmaker

from relance.db.models import DunningAction, DunningRun
from relance.dunning.dispatcher import Dispatcher
from relance.dunning.planner import plan
from relance.settings import Settings
from tests.factories import make_debtor, make_invoice
from tests.relance.dunning.helpers import FakeAssistant, FakeGateway, utc
from tests.support.purge import purge_debtors

NOW = utc(2026, 11, 23, 10, 0)  # Monday 11:00 in Paris
DEBTORS = 25


@pytest.mark.postgres
def test_two_dispatchers_never_send_the_same_stage_twice(
    engine: Engine, settings: Settings
) -> None:
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory() as session:
        debtors = [make_debtor(session, channels=("sms", "whatsapp")) for _ in range(DEBTORS)]
        for debtor in debtors:
            make_invoice(session, debtor, due=NOW.date() - timedelta(days=3))
            make_invoice(session, debtor, due=NOW.date() - timedelta(days=10))
        ids = [d.id for d in debtors]
        report = plan(session, now=NOW, debtor_ids=ids)
        session.commit()
        keys = sorted({g.group_key for g in report.groups})
        assert len(keys) == DEBTORS
    try:
        gateway, assistant = FakeGateway(), FakeAssistant()
        barrier = threading.Barrier(2)
        results: dict[str, Counter[str]] = {}
        errors: list[BaseException] = []

        def work(name: str) -> None:
            try:
                dispatcher = Dispatcher(
                    factory, gateway=gateway, assistant=assistant, worker_id=name
                )
                barrier.wait()
                # Both walk the very same groups in the same order: every claim is contested.
                results[name] = Counter(dispatcher.dispatch_group(k, now=NOW) for k in keys)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in ("w1", "w2")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        per_debtor = Counter(s["debtor_id"] for s in gateway.sent)
        assert per_debtor == Counter({debtor_id: 1 for debtor_id in ids})
        total = results["w1"] + results["w2"]
        assert total["sent"] == DEBTORS
        assert total["sent"] + total["taken"] == 2 * DEBTORS
        with factory() as session:
            actions = session.scalars(
                select(DunningAction).where(DunningAction.debtor_id.in_(ids))
            ).all()
            assert len(actions) == 2 * DEBTORS
            assert {a.status for a in actions} == {"sent"}
            claimed = Counter(a.claimed_by for a in actions)
            assert set(claimed) <= {"w1", "w2"} and sum(claimed.values()) == 2 * DEBTORS
    finally:
        with factory() as session:
            session.execute(delete(DunningRun).where(DunningRun.id == report.run_id))
            purge_debtors(session, ids)
