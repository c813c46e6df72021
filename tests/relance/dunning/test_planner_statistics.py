"""After a big first run the planner refreshes PostgreSQL's statistics on dunning_actions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import event
from sqlalchemy.orm import Session

from relance.db.base import utcnow
from relance.dunning import planner
from tests.factories import make_debtor, make_invoice


@freeze_time("2026-11-23 10:00:00")
def test_a_run_that_writes_many_rows_analyzes_the_table(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(planner, "ANALYZE_AFTER_ROWS", 2)
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    for days in (3, 12):
        make_invoice(db, debtor, due=utcnow().date() - timedelta(days=days))
    statements: list[str] = []
    engine = db.get_bind()
    listener = lambda *args: statements.append(args[2])  # noqa: E731 (conn, cursor, statement, ...)
    event.listen(engine, "before_cursor_execute", listener)
    try:
        report = planner.plan(db, debtor_ids=[debtor.id])
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert sum(n for k, n in report.counts.items() if k.startswith("stage:")) == 2
    analyzed = [s for s in statements if s.startswith("ANALYZE")]
    if engine.dialect.name == "postgresql":
        assert analyzed == ["ANALYZE dunning_actions"]
    else:  # SQLite has no planner statistics worth refreshing here
        assert analyzed == []


@freeze_time("2026-11-23 10:00:00")
def test_a_small_run_does_not_analyze(db: Session) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    statements: list[str] = []
    engine = db.get_bind()
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        planner.plan(db, debtor_ids=[debtor.id])
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert not [s for s in statements if s.startswith("ANALYZE")]
    assert any("dunning_actions" in s for s in statements)  # it did write
