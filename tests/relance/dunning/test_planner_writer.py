"""The planner's bulk writer: COPY on PostgreSQL writes exactly what the portable insert writes."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.base import utcnow
from relance.db.models import Debtor, DunningAction, DunningSkip, Invoice
from relance.dunning import planner, writer
from relance.dunning.planner import PlannedGroup, SkipRecord, plan
from relance.policy.schema import Stage
from tests.factories import make_debtor, make_invoice

NOW = "2026-11-23 08:00:00"


def _unescape(field: str) -> str | None:
    if field == "\\N":
        return None
    swaps = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}
    out, i = [], 0
    while i < len(field):
        pair = field[i : i + 2]
        if pair in swaps:
            out.append(swaps[pair])
            i += 2
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def test_copy_lines_carry_the_same_values_as_the_rows_even_with_special_characters() -> None:
    now = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    # Policy validation keeps stage keys to [a-z0-9_]; the encoder must not rely on it.
    stage = Stage.model_construct(key="friendly", offset_days=3, kind="message", channels=["sms"])
    groups = [
        PlannedGroup(
            7,
            "7:contact:2026-11-23",
            "contact",
            stage,
            ["sms", "whatsapp"],
            invoices=[(11, "odd\tkey\\x"), (12, "friendly")],
            priority=12.345,
        ),
        PlannedGroup(8, "8:legal:2026-11-23", "legal", stage, [], invoices=[(13, "legal")]),
    ]
    lines = list(writer.action_copy_lines(groups, 5, now))
    rows = list(writer.action_rows(groups, 5, now))
    assert len(lines) == len(rows) == 3
    for line, row in zip(lines, rows, strict=True):
        assert line.endswith("\n") and line.count("\n") == 1
        fields = [_unescape(f) for f in line[:-1].split("\t")]
        assert fields == [_unescape(writer.copy_text(v)) for v in row]
    assert _unescape(lines[0].split("\t")[0]) == "11:odd\tkey\\x"
    assert lines[2].split("\t")[9] == "\\N"  # no channel for a legal stage


def _scenario(db: Session) -> Debtor:
    """Several groups, kinds and skips for one debtor: calls, messages, a letter, an opt-out."""
    today = utcnow().date()
    debtor = make_debtor(db, channels=("sms", "whatsapp", "voice"))
    next(c for c in debtor.contacts if c.channel == "whatsapp").opted_out_at = utcnow()
    for days in (3, 10, 20, 30, 45, -10, 2):
        make_invoice(db, debtor, due=today - timedelta(days=days), amount_minor=1000 + days)
    db.flush()
    return debtor


def _written(db: Session, debtor: Debtor) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Rows with ids replaced by positions, so two debtors' rows compare."""
    db.expire_all()
    ids = db.scalars(select(Invoice.id).where(Invoice.debtor_id == debtor.id).order_by(Invoice.id))
    invoice_pos = {invoice_id: n for n, invoice_id in enumerate(ids)}
    actions = db.scalars(select(DunningAction).where(DunningAction.debtor_id == debtor.id)).all()
    action_rows = sorted(
        (
            invoice_pos[a.invoice_id],
            a.idempotency_key.split(":", 1)[1],
            a.stage,
            a.kind,
            a.group_key.split(":", 1)[1],
            a.status,
            a.priority,
            a.channels,
            a.channel,
            a.attempts,
            a.planned_at.replace(tzinfo=None),
            a.outcome,
        )
        for a in actions
    )
    skips = db.scalars(select(DunningSkip).where(DunningSkip.debtor_id == debtor.id)).all()
    skip_rows = sorted((invoice_pos[s.invoice_id], s.stage, s.reason, s.detail) for s in skips)
    return action_rows, skip_rows


@freeze_time(NOW)
def test_bulk_path_writes_the_same_rows_as_the_portable_path(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL the bulk path is COPY; it must match the portable executemany insert."""
    copies: list[int] = []
    real_copy = writer.copy_actions
    monkeypatch.setattr(
        writer, "copy_actions", lambda session, lines: copies.append(1) or real_copy(session, lines)
    )
    bulk_debtor = _scenario(db)
    plan(db, debtor_ids=[bulk_debtor.id])
    portable_debtor = _scenario(db)
    monkeypatch.setattr(planner, "write_chunk", functools.partial(writer.write_chunk, bulk=False))
    plan(db, debtor_ids=[portable_debtor.id])
    bulk, portable = _written(db, bulk_debtor), _written(db, portable_debtor)
    assert bulk == portable
    assert len(bulk[0]) == 6 and {r[2] for r in bulk[0]} >= {"call", "formal_notice", "legal"}
    assert [r[2] for r in bulk[1]] == ["channel_opted_out"] * len(bulk[1]) and bulk[1]
    assert copies == ([1] if db.get_bind().dialect.name == "postgresql" else [])


@freeze_time(NOW)
@pytest.mark.parametrize("bulk", [True, False])
def test_writing_a_chunk_twice_writes_each_stage_once(db: Session, bulk: bool) -> None:
    """Two planners that decided the same chunk: the second write adds nothing."""
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3))
    report = plan(db, debtor_ids=[debtor.id], dry_run=True)
    [group] = report.groups
    skip = SkipRecord(invoice.id, debtor.id, "friendly", "channel_opted_out", "sms opted out")
    run = plan(db, debtor_ids=[], dry_run=False).run_id
    assert run is not None
    for _ in range(2):
        writer.write_chunk(db, run, [group], [skip], [], [], utcnow(), bulk=bulk)
    actions = db.scalars(select(DunningAction).where(DunningAction.debtor_id == debtor.id)).all()
    assert [(a.invoice_id, a.stage, a.group_key) for a in actions] == [
        (invoice.id, "friendly", group.group_key)
    ]
    skips = db.scalars(select(DunningSkip).where(DunningSkip.debtor_id == debtor.id)).all()
    assert len(skips) == 1
