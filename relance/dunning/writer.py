"""Writes one planner chunk: retired and superseded actions, new actions, skip records.

The first run after importing a portfolio writes an action for nearly every open invoice, so the
write path is built for volume: rows are flat tuples (one per invoice, the group's values shared),
never ORM objects. PostgreSQL gets them through COPY into a temporary table and one
`INSERT ... SELECT ... ON CONFLICT DO NOTHING`; other databases (SQLite) through one multi-row
insert with the same conflict rule. Both paths write the same rows, and the conflict rule on
`<invoice>:<stage>` keeps two planners running at once from planning a stage twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import String, cast, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from relance.db.models import DunningAction, DunningSkip

if TYPE_CHECKING:
    from relance.dunning.planner import PlannedGroup, SkipRecord

PENDING = ("planned", "retry")
ACTION_COLUMNS = (
    "idempotency_key",
    "invoice_id",
    "debtor_id",
    "stage",
    "kind",
    "group_key",
    "status",
    "priority",
    "channels",
    "channel",
    "attempts",
    "run_id",
    "planned_at",
)
SKIP_COLUMNS = ("run_id", "invoice_id", "debtor_id", "stage", "reason", "detail")
STAGING_TABLE = "dunning_actions_stage"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def action_rows(
    groups: Iterable[PlannedGroup], run_id: int, now: datetime
) -> Iterator[tuple[Any, ...]]:
    """One tuple per planned (invoice, stage), in ACTION_COLUMNS order."""
    for g in groups:
        channel = g.channels[0] if g.channels else None
        for invoice_id, stage_key in g.invoices:
            yield (
                f"{invoice_id}:{stage_key}",
                invoice_id,
                g.debtor_id,
                stage_key,
                g.kind,
                g.group_key,
                "planned",
                g.priority,
                g.channels,
                channel,
                0,
                run_id,
                now,
            )


def copy_text(value: object) -> str:
    """A value in PostgreSQL's COPY text format (NULL is \\N, specials backslash-escaped)."""
    if value is None:
        return "\\N"
    if isinstance(value, list):
        value = json.dumps(value)
    elif isinstance(value, datetime):
        value = value.isoformat()
    return str(value).translate(_COPY_ESCAPES)


def action_copy_lines(groups: Iterable[PlannedGroup], run_id: int, now: datetime) -> Iterator[str]:
    """COPY text lines equal to `action_rows`; what a group shares is encoded once per group."""
    tail = f"\t0\t{run_id}\t{copy_text(now)}\n"
    texts: dict[Any, str] = {}  # stage keys, kinds and channel lists repeat: encode them once

    def text(value: Any, key: Any) -> str:
        found = texts.get(key)
        if found is None:
            found = texts[key] = copy_text(value)
        return found

    for g in groups:
        channels = tuple(g.channels)
        before = f"\t{g.debtor_id}\t"
        after = (
            f"\t{text(g.kind, ('kind', g.kind))}\t{g.group_key.translate(_COPY_ESCAPES)}"
            f"\tplanned\t{g.priority!r}\t{text(g.channels, ('channels', channels))}"
            f"\t{text(channels[0] if channels else None, ('channel', channels[:1]))}{tail}"
        )
        for invoice_id, stage_key in g.invoices:
            stage = text(stage_key, ("stage", stage_key))
            yield f"{invoice_id}:{stage}\t{invoice_id}{before}{stage}{after}"


def write_chunk(
    session: Session,
    run_id: int,
    groups: Sequence[PlannedGroup],
    skips: Sequence[SkipRecord],
    supersede: list[int],
    retire: list[int],
    now: datetime,
    *,
    bulk: bool = True,
) -> None:
    """Write what the planner decided for one chunk. `bulk=False` forces the portable path."""
    if retire:  # the old row keeps its history under a retired key, freeing `<invoice>:<stage>`
        session.execute(
            update(DunningAction)
            .where(DunningAction.id.in_(retire))
            .values(
                idempotency_key=DunningAction.idempotency_key
                + ":retired:"
                + cast(DunningAction.id, String)
            ),
            execution_options={"synchronize_session": False},
        )
    if supersede:
        session.execute(
            update(DunningAction)
            .where(DunningAction.id.in_(supersede), DunningAction.status.in_(PENDING))
            .values(status="cancelled", outcome="superseded"),
            execution_options={"synchronize_session": False},
        )
    if any(g.invoices for g in groups):
        if bulk and session.get_bind().dialect.name == "postgresql":
            copy_actions(session, action_copy_lines(groups, run_id, now))
        else:
            insert_actions(session, action_rows(groups, run_id, now))
    if skips:
        # One row per (invoice, stage, reason): the run that first saw it. Routine runs every
        # hour would otherwise write the same skips again and again.
        session.execute(
            _on_conflict_do_nothing(session, DunningSkip, ["invoice_id", "stage", "reason"]),
            [
                dict(
                    zip(
                        SKIP_COLUMNS,
                        (run_id, s.invoice_id, s.debtor_id, s.stage, s.reason, s.detail[:300]),
                        strict=True,
                    )
                )
                for s in skips
            ],
        )


def insert_actions(session: Session, rows: Iterable[tuple[Any, ...]]) -> None:
    """Portable path: one executemany of an insert with on-conflict-do-nothing."""
    params = [dict(zip(ACTION_COLUMNS, row, strict=True)) for row in rows]
    if params:
        session.execute(
            _on_conflict_do_nothing(session, DunningAction, ["idempotency_key"]), params
        )


def copy_actions(session: Session, lines: Iterable[str], batch: int = 1 << 20) -> None:
    """PostgreSQL: COPY the lines into a temporary table, then one INSERT ... ON CONFLICT.

    COPY streams the chunk in one round trip, with no per-row parameter handling; the conflict
    rule still makes a concurrent or repeated planner harmless.
    """
    import psycopg  # here only: the COPY path is PostgreSQL's

    connection = session.connection()
    driver = connection.connection.driver_connection
    if not isinstance(driver, psycopg.Connection):
        raise TypeError(f"COPY needs a psycopg connection, not {type(driver).__name__}")
    columns = ", ".join(ACTION_COLUMNS)
    connection.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {STAGING_TABLE} "
        "(LIKE dunning_actions INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY {STAGING_TABLE} ({columns}) FROM STDIN") as copy,
    ):
        buffer: list[str] = []
        size = 0
        for line in lines:
            buffer.append(line)
            size += len(line)
            if size >= batch:
                copy.write("".join(buffer))
                buffer, size = [], 0
        if buffer:
            copy.write("".join(buffer))
    connection.exec_driver_sql(
        f"INSERT INTO dunning_actions ({columns}) SELECT {columns} FROM {STAGING_TABLE} "
        "ON CONFLICT (idempotency_key) DO NOTHING"
    )
    connection.exec_driver_sql(f"TRUNCATE {STAGING_TABLE}")


def _on_conflict_do_nothing(session: Session, model: Any, index_elements: list[str]) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(model).on_conflict_do_nothing(index_elements=index_elements)
    if dialect == "sqlite":
        return sqlite.insert(model).on_conflict_do_nothing(index_elements=index_elements)
    return insert(model)
