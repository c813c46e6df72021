"""Planner benchmark: 1,000,000 open invoices on PostgreSQL.

    python bench/planner/run.py --url postgresql://postgres@localhost/relance_bench \
        [--invoices 1000000] [--debtors 250000] [--append BENCHMARKS.md]

Populates a dedicated database with COPY (debtors, contacts, invoices, a few disputes, promises
and plans), then times two planner runs in a fresh process each: a cold run (every overdue
invoice gets its stage planned and written) and a warm run (the next run of the day: everything
already planned). Peak memory is the process's maximum RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def _engine(url: str):  # type: ignore[no-untyped-def]
    from relance.db.session import make_engine
    from relance.settings import normalise_database_url

    return make_engine(normalise_database_url(url))


def ensure_database(url: str) -> None:
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
            conn.execute(f'create database "{name}"')


def populate(url: str, invoices: int, debtors: int, seed: int = 7) -> None:
    import relance.db.models  # noqa: F401
    from relance.db.base import Base

    ensure_database(url)
    engine = _engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    rng = random.Random(seed)
    today = NOW.date()
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        with conn.cursor() as cur:
            segments = ("consumer", "consumer", "consumer", "b2b")
            risks = ("low", "standard", "standard", "standard", "high")
            with cur.copy(
                "COPY debtors (id, customer_number, name, segment, risk_class, language, timezone,"
                " jurisdiction, address_line, postcode, city, country, credit_minor, created_at)"
                " FROM STDIN"
            ) as copy:
                for d in range(1, debtors + 1):
                    copy.write_row(
                        (
                            d,
                            f"B{d:08d}",
                            f"Debtor {d}",
                            segments[d % 4],
                            risks[d % 5],
                            "fr",
                            "Europe/Paris",
                            "FR",
                            f"{d} rue du Test",
                            "75001",
                            "Paris",
                            "FR",
                            0,
                            NOW,
                        )
                    )
            with cur.copy(
                "COPY contacts (debtor_id, channel, address, consent, status, failure_count,"
                " created_at) FROM STDIN"
            ) as copy:
                for d in range(1, debtors + 1):
                    phone = f"+336{d:08d}"
                    copy.write_row((d, "sms", phone, True, "ok", 0, NOW))
                    if d % 2:
                        copy.write_row((d, "whatsapp", f"whatsapp:{phone}", True, "ok", 0, NOW))
            with cur.copy(
                "COPY invoices (id, debtor_id, number, amount_minor, paid_minor, currency,"
                " issue_date, due_date, status, created_at) FROM STDIN"
            ) as copy:
                for i in range(1, invoices + 1):
                    debtor = rng.randint(1, debtors)
                    due = today + timedelta(days=rng.randint(-60, 30))
                    copy.write_row(
                        (
                            i,
                            debtor,
                            f"INV{i:09d}",
                            rng.randint(2000, 500000),
                            0,
                            "EUR",
                            due - timedelta(days=30),
                            due,
                            "open",
                            NOW,
                        )
                    )
        conn.commit()
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO disputes (reference, debtor_id, invoice_id, reason, status, created_at)"
                " SELECT 'D' || id, debtor_id, id, 'amount', 'open', %s FROM invoices"
                " WHERE id %% 100 = 1",
                (NOW,),
            )
            cur.execute(
                "INSERT INTO promises (debtor_id, amount_minor, currency, promised_date, status,"
                " invoice_ids, source, created_at) SELECT id, 1000, 'EUR', %s, 'pending', '[]',"
                " 'bot', %s FROM debtors WHERE id %% 97 = 0",
                (today + timedelta(days=5), NOW),
            )
            cur.execute(
                "INSERT INTO payment_plans (debtor_id, total_minor, currency, installments_count,"
                " frequency, status, invoice_ids, created_at) SELECT id, 1000, 'EUR', 3, 'monthly',"
                " 'active', '[]', %s FROM debtors WHERE id %% 89 = 0",
                (NOW,),
            )
            for table in ("debtors", "invoices"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" (SELECT max(id) FROM {table}))"
                )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    finally:
        raw.close()


def reset(url: str) -> None:
    """Back to the state right after the import: no run, no planned action, no skip."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE dunning_actions, dunning_skips, dunning_runs RESTART IDENTITY")
        conn.execute("VACUUM ANALYZE dunning_actions")


# Planner steps timed per run (module attribute -> label): where the time goes.
PHASES = {
    "_invoices_and_actions": "read invoices",
    "load_contexts": "read contexts",
    "_plan_chunk": "decide (Python)",
    "write_chunk": "write",
}


def _timed(phases: dict[str, float], label: str, fn):  # type: ignore[no-untyped-def]
    def inner(*args, **kwargs):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            phases[label] = phases.get(label, 0.0) + time.perf_counter() - started

    return inner


def run_once(url: str, chunk: int, days_later: int = 0) -> dict[str, object]:
    """One planner run in this process: wall time, peak RSS, counts, seconds per phase."""
    from sqlalchemy.orm import Session

    from relance.dunning import planner

    phases: dict[str, float] = {}
    for name, label in PHASES.items():
        setattr(planner, name, _timed(phases, label, getattr(planner, name)))
    engine = _engine(url)
    started = time.perf_counter()
    with Session(engine) as session:
        report = planner.plan(
            session, now=NOW + timedelta(days=days_later), chunk_size=chunk, keep=100
        )
        session.commit()
    elapsed = time.perf_counter() - started
    return {
        "seconds": round(elapsed, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "counts": dict(report.counts),
        "phases": {k: round(v, 1) for k, v in phases.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@localhost/relance_bench")
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--debtors", type=int, default=250_000)
    parser.add_argument("--chunk", type=int, default=2000)
    parser.add_argument("--reuse", action="store_true", help="skip populating")
    parser.add_argument(
        "--reset",
        action="store_true",
        help="with --reuse: delete planner output first, so 'cold' is a first run",
    )
    parser.add_argument("--append", type=Path, help="append the results to this Markdown file")
    parser.add_argument(
        "--runs",
        default="cold,warm,next",
        help="cold: first run after import; warm: same day again; "
        "next: the following day (only that day's stage changes)",
    )
    parser.add_argument(
        "--next-offset",
        type=int,
        default=1,
        help="days after the base date for the 'next' run (with --reuse: 2, 3...)",
    )
    parser.add_argument("--run-once", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--days-later", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_once:
        print(json.dumps(run_once(args.url, args.chunk, args.days_later)))
        return
    if not args.reuse:
        t0 = time.perf_counter()
        populate(args.url, args.invoices, args.debtors)
        print(f"populated {args.invoices:,} invoices in {time.perf_counter() - t0:.1f} s")
    elif args.reset:
        reset(args.url)
    runs = {}
    for label in args.runs.split(","):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--url",
                args.url,
                "--chunk",
                str(args.chunk),
                "--run-once",
                "--days-later",
                str(args.next_offset) if label == "next" else "0",
            ],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        runs[label] = json.loads(out.stdout.strip().splitlines()[-1])
        print(label, runs[label])
    if args.append:
        _append(args, runs)


LABELS = {
    "cold": "cold: first run after importing the portfolio (every due stage planned and written)",
    "warm": "warm: same day again (everything already planned)",
    "next": "next day: the daily run (only stages reached that day are written)",
}


def _append(args: argparse.Namespace, runs: dict[str, dict]) -> None:
    loadavg = Path("/proc/loadavg")
    load = loadavg.read_text().split()[:3] if loadavg.exists() else ["?"]
    command = (
        f"python bench/planner/run.py --url postgresql://postgres@localhost/relance_bench"
        f" --invoices {args.invoices} --debtors {args.debtors} --chunk {args.chunk}"
        f" --runs {args.runs} --next-offset {args.next_offset}"
        f"{' --reuse' if args.reuse else ''}{' --reset' if args.reset else ''}"
        " --append BENCHMARKS.md"
    )
    lines = [
        "",
        f"## Dunning planner — {args.invoices:,} open invoices on PostgreSQL ({date.today()})",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {os.cpu_count()} CPUs, local PostgreSQL; {args.debtors:,} debtors; chunks of "
        f"{args.chunk} debtors; load average at the end {' '.join(load)} (the machine may be "
        "shared with other runs: read the load). Target: < 60 s, memory bounded.",
        "",
        "| run | wall time | peak RSS | stages planned | skipped | contacts (groups) "
        "| seconds per phase |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for label, result in runs.items():
        counts = result["counts"]
        planned = sum(v for k, v in counts.items() if k.startswith("stage:"))
        skipped = sum(v for k, v in counts.items() if k.startswith("skip:"))
        lines.append(
            f"| {LABELS.get(label, label)} | {result['seconds']} s | {result['peak_rss_mb']} MB "
            f"| {planned:,} | {skipped:,} | {counts.get('groups', 0):,} "
            f"| {', '.join(f'{k} {v}' for k, v in result.get('phases', {}).items())} |"
        )
    lines.append("")
    with args.append.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines))


if __name__ == "__main__":
    main()
