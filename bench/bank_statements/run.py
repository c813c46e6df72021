"""Reconcile a 50,000-line camt.053 statement; the CSV transfer import of the same lines as peer.

    python bench/bank_statements/run.py [--lines 50000] [--peer-lines 5000] [--url URL]
        [--append BENCHMARKS.md]

Seeds a fresh database (SQLite file in a temporary folder unless --url names a PostgreSQL
database) with one open invoice per line plus as many again already paid, builds the statement
(60 % RF references, 20 % invoice numbers in the remittance text, 10 % payer name + amount, 10 %
nothing usable), and times `import_statement` in a fresh process: parse, checks, matching and
the ledger writes, committed. Peak memory is the child process's own high-water mark (VmHWM). The peer is the
existing CSV transfer import (`relance.ledger.transfers.import_transfers_csv`) of the same
payments, run on `--peer-lines` lines of a second database in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
ACCOUNT = "FR7630006000011234567890189"


def _engine(url: str):  # type: ignore[no-untyped-def]
    from relance.db.session import make_engine
    from relance.settings import normalise_database_url

    return make_engine(normalise_database_url(url))


def seed(url: str, lines: int) -> None:
    """Debtors 1..n, each with its open invoice (id = debtor id) and an older paid one."""
    import relance.db.models  # noqa: F401
    from relance.db.base import Base, utcnow
    from relance.db.models import Debtor, Invoice

    engine = _engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    now = utcnow()
    with engine.begin() as conn:
        for start in range(1, lines + 1, 5000):
            ids = range(start, min(start + 5000, lines + 1))
            conn.execute(
                Debtor.__table__.insert(),
                [
                    {
                        "id": d,
                        "customer_number": f"B{d:08d}",
                        "name": f"Debtor {d}",
                        "segment": "consumer",
                        "risk_class": "standard",
                        "language": "fr",
                        "timezone": "Europe/Paris",
                        "jurisdiction": "FR",
                        "country": "FR",
                        "credit_minor": 0,
                        "created_at": now,
                    }
                    for d in ids
                ],
            )
            conn.execute(
                Invoice.__table__.insert(),
                [
                    {
                        "id": d + offset,
                        "debtor_id": d,
                        "number": f"F-{d + offset:08d}",
                        "amount_minor": _amount(d),
                        "paid_minor": _amount(d) if offset else 0,
                        "currency": "EUR",
                        "issue_date": date(2026, 9, 1),
                        "due_date": date(2026, 10, 1),
                        "status": "paid" if offset else "open",
                        "created_at": now,
                    }
                    for d in ids
                    for offset in (0, 10**8)
                ],
            )
    engine.dispose()


def _amount(d: int) -> int:
    return 1000 + (d * 37) % 90000


def build_camt053(lines: int) -> bytes:
    from relance.bank_statements import rf

    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>'
        "<GrpHdr><MsgId>BENCH</MsgId><CreDtTm>2026-11-21T06:00:00</CreDtTm></GrpHdr>"
        f"<Stmt><Id>BENCH-{lines}</Id><Acct><Id><IBAN>{ACCOUNT}</IBAN></Id><Ccy>EUR</Ccy></Acct>"
    ]
    for d in range(1, lines + 1):
        kind = d % 10
        amount = f"{_amount(d) / 100:.2f}"
        payer, remittance, structured = f"Debtor {d}", "", ""
        if kind < 6:
            structured = (
                "<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp>"
                f"<Ref>{rf.for_invoice(d)}</Ref></CdtrRefInf></Strd>"
            )
        elif kind < 8:
            remittance = f"<Ustrd>Facture F-{d:08d} merci</Ustrd>"
        elif kind == 8:
            remittance = "<Ustrd>virement</Ustrd>"
        else:
            payer, remittance = f"Unknown payer {d}", "<Ustrd>cadeau</Ustrd>"
        parts.append(
            f'<Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>'
            "<BookgDt><Dt>2026-11-20</Dt></BookgDt><ValDt><Dt>2026-11-20</Dt></ValDt>"
            f"<AcctSvcrRef>BENCH{d:09d}</AcctSvcrRef><NtryDtls><TxDtls>"
            f"<RltdPties><Dbtr><Nm>{payer}</Nm></Dbtr></RltdPties>"
            f"<RmtInf>{remittance}{structured}</RmtInf></TxDtls></NtryDtls></Ntry>"
        )
    parts.append("</Stmt></BkToCstmrStmt></Document>")
    return "".join(parts).encode()


def build_csv(lines: int) -> str:
    rows = ["date,amount,currency,reference,customer_number,invoice_number"]
    for d in range(1, lines + 1):
        rows.append(f"2026-11-20,{_amount(d) / 100:.2f},EUR,CSV{d:09d},B{d:08d},F-{d:08d}")
    return "\n".join(rows) + "\n"


def child(kind: str, url: str, path: str) -> None:
    """Runs in a fresh process: one import, committed; prints its figures as JSON."""
    os.environ["DATABASE_URL"] = url
    os.environ["BANK_STATEMENT_MAX_BYTES"] = str(512 * 1024 * 1024)
    os.environ.setdefault("BANK_STATEMENT_MAX_LINES", "1000000")
    from relance.db.session import get_sessionmaker

    data = Path(path).read_bytes()
    session = get_sessionmaker()()
    started = time.perf_counter()
    if kind == "camt":
        from relance.bank_statements.service import import_statement

        report = import_statement(session, data, actor="bench", filename="bench.xml")
        figures = {"matched": report.matched, "review": report.review, "rules": report.by_rule}
    else:
        from relance.ledger.transfers import import_transfers_csv

        csv_report = import_transfers_csv(session, data.decode(), recorded_by="bench")
        figures = {"matched": len(csv_report.recorded), "review": len(csv_report.errors)}
    session.commit()
    elapsed = time.perf_counter() - started
    rss_mb = _peak_rss_mb()
    print(json.dumps({"seconds": elapsed, "peak_rss_mb": rss_mb, **figures}))


def _peak_rss_mb() -> float:
    """This process's own peak (VmHWM). ru_maxrss is not used: on Linux a child started by
    fork+exec reports at least its parent's peak, which hid the small runs' figures."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_child(kind: str, url: str, path: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--url", url, "--file", str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--peer-lines", type=int, default=5_000)
    parser.add_argument("--url", default="")
    parser.add_argument("--append", default="")
    parser.add_argument("--child", default="")
    parser.add_argument("--file", default="")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.url, args.file)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = args.url or f"sqlite:///{folder / 'bench.db'}"
        peer_url = (args.url + "_peer") if args.url else f"sqlite:///{folder / 'peer.db'}"
        if args.url:
            from bench.planner.run import ensure_database

            ensure_database(args.url)
            ensure_database(peer_url)
        rows = []
        for name, kind, n, db_url, builder, suffix in (
            ("camt.053 → reconciled", "camt", args.lines, url, build_camt053, "xml"),
            ("camt.053, peer size", "camt", args.peer_lines, url, build_camt053, "xml"),
            (
                "CSV transfers (existing import), peer size",
                "csv",
                args.peer_lines,
                peer_url,
                lambda n: build_csv(n).encode(),
                "csv",
            ),
        ):
            seed(db_url, n)
            path = folder / f"{kind}-{n}.{suffix}"
            path.write_bytes(builder(n))
            result = _run_child(kind, db_url, path)
            result.update(name=name, lines=n, size_mb=path.stat().st_size / 1e6)
            rows.append(result)
            print(json.dumps(result), flush=True)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    ratio = (rows[2]["seconds"] / rows[2]["lines"]) / (rows[1]["seconds"] / rows[1]["lines"])  # type: ignore[operator]
    table = [
        "| run | lines | file | wall time | lines/s | peak RSS | matched | to review |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        table.append(
            f"| {r['name']} | {r['lines']:,} | {r['size_mb']:.1f} MB | {r['seconds']:.1f} s | "
            f"{r['lines'] / r['seconds']:,.0f} | {r['peak_rss_mb']:.0f} MB | {r['matched']:,} | "  # type: ignore[operator]
            f"{r['review']:,} |"
        )
    text = (
        f"\n## Bank statement reconciliation — {args.lines:,}-line camt.053 "
        f"({'PostgreSQL' if args.url else 'SQLite'}, {date.today().isoformat()})\n\n"
        f"Command: `python bench/bank_statements/run.py --lines {args.lines} "
        f"--peer-lines {args.peer_lines}{' --url …' if args.url else ''}`\n\n"
        f"Machine: 2 CPUs shared with other runs; load average at the end {load}. Each import "
        "runs in a fresh process, committed in one transaction; peak RSS is that process's.\n\n"
        + "\n".join(table)
        + f"\n\nPer line, the camt.053 reconciliation costs {1 / ratio:.2f}× the existing CSV "
        "transfer import of the same payments (same run, same size).\n"
    )
    print(text)
    if args.append:
        with open(args.append, "a", encoding="utf-8") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
