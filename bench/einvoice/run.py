"""E-invoice import benchmark: N UBL 2.1 invoices against the CSV import of the same invoices.

    python bench/einvoice/run.py [--invoices 20000] [--per-debtor 5] [--append BENCHMARKS.md]

Writes N UBL files (one invoice each, `--per-debtor` invoices per buyer, buyers identified by
SIRET, VAT number and customer number, with a phone so the debtor can be created) and one CSV
holding the same invoices. Each import runs in a fresh process on a fresh SQLite file:
`relance einvoices import FOLDER`'s code path (one transaction, a savepoint per file, the
original kept on disk) and the CSV importer (`import_rows`, one transaction). Peak memory is the
process's maximum RSS; CPU time is the child's user + system time, which a shared machine's load
disturbs less than wall time. Both run in the same invocation, so the ratio compares like with
like; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def generate(folder: Path, invoices: int, per_debtor: int) -> Path:
    from tests.relance.einvoice.samples import Sample, ubl

    xml_dir = folder / "ubl"
    xml_dir.mkdir()
    csv_path = folder / "invoices.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "customer_number",
                "name",
                "phone",
                "invoice_number",
                "amount",
                "currency",
                "issue_date",
                "due_date",
                "email",
                "address_line",
                "postcode",
                "city",
                "country",
                "company",
                "segment",
                "description",
            ]
        )
        for n in range(invoices):
            d = n // per_debtor
            s = Sample(
                number=f"BE-{n:07d}",
                buyer_id=f"CB-{d:06d}",
                buyer_name=f"Client {d} SARL",
                siret=f"{100000000 + d:09d}00012",
                vat_number=f"FR00{100000000 + d:09d}",
                phone=f"+336{d:08d}",
                email=f"compta{d}@client.example",
                total=f"{100 + n % 900}.{n % 100:02d}",
            )
            (xml_dir / f"{s.number}.xml").write_bytes(ubl(s))
            writer.writerow(
                [
                    s.buyer_id,
                    s.buyer_name,
                    s.phone,
                    s.number,
                    s.total,
                    s.currency,
                    s.issue,
                    s.due,
                    s.email,
                    s.street,
                    s.postcode,
                    s.city,
                    "FR",
                    s.buyer_name,
                    "b2b",
                    s.terms[:300],
                ]
            )
    return csv_path


def _fresh(db_file: Path) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{db_file}"
    os.environ["VAR_DIR"] = str(db_file.parent / "var")
    import relance.db.models  # noqa: F401
    from relance.db.base import Base
    from relance.db.session import get_engine

    Base.metadata.create_all(get_engine())


def child(kind: str, folder: Path) -> None:
    db_file = folder / f"{kind}.db"
    _fresh(db_file)
    from relance.db.session import session_scope

    started, cpu = time.perf_counter(), time.process_time()
    with session_scope() as session:
        if kind == "csv":
            from relance.portfolio.importer import import_rows, read_csv

            report = import_rows(session, read_csv((folder / "invoices.csv").read_text()))
            ok, count = report.ok, report.invoices_created
        else:
            from relance.einvoice.bundle import from_paths
            from relance.einvoice.service import import_sources

            result = import_sources(
                session, from_paths([folder / "ubl"]), actor="bench", store_dir=folder / "store"
            )
            ok, count = result.ok, result.count("created")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "kind": kind,
                "ok": ok,
                "created": count,
                "seconds": seconds,
                "cpu": cpu,
                "peak_mb": peak_mb,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=20_000)
    parser.add_argument("--per-debtor", type=int, default=5)
    parser.add_argument("--append", type=Path)
    parser.add_argument("--child", choices=["csv", "ubl"])
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.folder)
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        generate(folder, args.invoices, args.per_debtor)
        print(f"generated {args.invoices} UBL files + CSV in {time.perf_counter() - t0:.1f} s")
        load_before = os.getloadavg()
        results = {}
        for kind in ("csv", "ubl"):
            out = (
                subprocess.run(
                    [sys.executable, __file__, "--child", kind, "--folder", str(folder)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                .stdout.strip()
                .splitlines()[-1]
            )
            results[kind] = json.loads(out)
            print(results[kind])
    load_after = os.getloadavg()
    c, u = results["csv"], results["ubl"]
    assert c["ok"] and u["ok"] and c["created"] == u["created"] == args.invoices, results
    n = args.invoices

    def row(label: str, r: dict[str, float]) -> str:
        return (
            f"| {n:,} | {label} | {r['seconds']:.1f} s | {r['cpu']:.1f} s | "
            f"{n / r['seconds']:,.0f} | {r['peak_mb']:.0f} MB |\n"
        )

    table = (
        "\n| N | import | time | CPU time | invoices/s | peak RSS |\n"
        "| ---: | --- | ---: | ---: | ---: | ---: |\n"
        + row("CSV (one file, `import_rows`)", c)
        + row("UBL 2.1 (one file per invoice, `relance einvoices import`)", u)
        + f"\nUBL / CSV at {n:,} invoices ({n // args.per_debtor:,} debtors, SQLite): "
        f"**{u['seconds'] / c['seconds']:.1f}x** the time, {u['cpu'] / c['cpu']:.1f}x the CPU "
        f"time, {u['peak_mb'] / c['peak_mb']:.1f}x the peak memory (same run; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after).\n"
    )
    print(table)
    if args.append:
        with args.append.open("a", encoding="utf-8") as handle:
            handle.write(table)


if __name__ == "__main__":
    main()
