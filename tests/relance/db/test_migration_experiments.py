"""0002: the experiment assignment becomes the first exposure, and an exposure names its dunning
group instead of its message; 0003: send-hour arms (an hour, no variant, no template); 0005:
channel-order and stage-offset arms. Existing rows keep what they said, both ways, and rebuilding
the experiments table on SQLite deletes none of its children (foreign keys are off during
migrations)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import Connection, MetaData, inspect, text

from relance.db.migrate import alembic_config
from relance.db.session import make_engine

AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _row(conn: Connection, table: str, **values: Any) -> int:
    """Insert a row with `values` and a plain value in every other NOT NULL column."""
    metadata = MetaData()
    metadata.reflect(conn, only=[table])
    row = dict(values)
    for column in metadata.tables[table].columns:
        if column.name in row or column.nullable or column.primary_key:
            continue
        python = column.type.python_type
        row[column.name] = (
            AT
            if python is datetime
            else AT.date()
            if python is date
            else 1
            if python in (int, float, bool)
            else []
            if python in (list, dict)
            else f"{table}-{column.name}"
        )
    result = conn.execute(metadata.tables[table].insert().values(row))
    return int(result.inserted_primary_key[0])


def test_assignments_and_message_links_survive_the_upgrade_and_the_downgrade(
    tmp_path: Path, settings: object
) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    config = alembic_config(url)
    command.upgrade(config, "0001_initial")
    engine = make_engine(url)
    with engine.begin() as conn:
        debtor = _row(conn, "debtors", customer_number="C-1")
        conversation = _row(conn, "conversations", debtor_id=debtor, sender_id="debtor-1")
        message = _row(conn, "messages", conversation_id=conversation)
        experiment = _row(conn, "experiments", key="k")
        _row(conn, "experiment_arms", experiment_id=experiment, index=0, variant_index=2)
        _row(
            conn, "experiment_assignments", experiment_id=experiment, debtor_id=debtor, arm_index=1
        )
        invoice = _row(conn, "invoices", debtor_id=debtor, number="F-1", currency="EUR")
        _row(
            conn,
            "dunning_actions",
            invoice_id=invoice,
            debtor_id=debtor,
            group_key="1:contact:2026-11-23",
            stage="soft",
            message_id=message,
            idempotency_key="k1",
        )
        _row(
            conn,
            "experiment_exposures",
            experiment_id=experiment,
            debtor_id=debtor,
            arm_index=1,
            stage="soft",
            message_id=message,
        )
    command.upgrade(config, "head")
    with engine.begin() as conn:
        assert "experiment_assignments" not in inspect(conn).get_table_names()
        assert conn.execute(
            text("SELECT arm_index, group_key FROM experiment_exposures")
        ).all() == [(1, "1:contact:2026-11-23")]
    command.downgrade(config, "0001_initial")
    with engine.begin() as conn:
        assert conn.execute(
            text("SELECT experiment_id, debtor_id, arm_index FROM experiment_assignments")
        ).all() == [(experiment, debtor, 1)]
        assert conn.execute(text("SELECT message_id FROM experiment_exposures")).all() == [
            (message,)
        ]
    engine.dispose()


def test_channel_order_and_offset_arms_come_with_0005_and_leave_with_it(
    tmp_path: Path, settings: object
) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    config = alembic_config(url)
    command.upgrade(config, "0004_sepa_direct_debit")
    engine = make_engine(url)
    with engine.begin() as conn:
        wording = _row(conn, "experiments", key="words", factor="wording")
        _row(conn, "experiment_arms", experiment_id=wording, index=0, variant_index=1)
    command.upgrade(config, "head")
    with engine.begin() as conn:
        assert conn.execute(text("SELECT channels, offset_days FROM experiment_arms")).all() == [
            (None, None)
        ]
        order = _row(conn, "experiments", key="order", factor="channel_order")
        _row(conn, "experiment_arms", experiment_id=order, index=0, channels='["sms", "email"]')
        offset = _row(conn, "experiments", key="offset", factor="stage_offset")
        _row(conn, "experiment_arms", experiment_id=offset, index=0, offset_days=7)
    command.downgrade(config, "0004_sepa_direct_debit")
    with engine.begin() as conn:
        # Nothing to vary without their arms' columns: those experiments go, the others stay.
        assert conn.execute(text("SELECT key FROM experiments")).all() == [("words",)]
        assert conn.execute(text("SELECT experiment_id FROM experiment_arms")).all() == [(wording,)]
    engine.dispose()
