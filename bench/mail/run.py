"""E-mail throughput through the dispatcher and the SMTP gateway, as a ratio to bare smtplib.

    python bench/mail/run.py [--mails 2000] [--rounds 3] [--append BENCHMARKS.md]

Both sides send to the same local aiosmtpd sink (tests/mail/sink.py) on 127.0.0.1, in one run.
The sink runs in a process of its own (`--sink process`, the default), as any MTA does; `--sink
thread` runs it inside the bench's own interpreter, where its work competes with both sides'
for the one GIL (the arrangement of the figures recorded before 2026-12-07's last runs).
The Relance side is the production path for due e-mail reminders: `Dispatcher.run` hands them to
the batched e-mail path (relance/dunning/email_batch.py, `Dispatcher.mail_batch` groups at a
time), which claims the groups, re-checks the invoices and every compliance rule, renders each
reminder (plain + HTML, headers, List-Unsubscribe), commits the outbound rows, sends them through
`SmtpMailGateway` (one reused connection) and keeps the proofs (SHA-256, SMTP answer, `.eml`).
SQLite, an assistant that answers at once (Rasa is left out). The peer is a bare smtplib loop
sending the very bytes the sink received from the Relance side, over one connection. Each round
dispatches a fresh set of reminders, then replays them bare; throughput is messages per second,
the median of the rounds.
"""

from __future__ import annotations

import argparse
import os
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday, 11:00 in Paris


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--append", type=Path)
    parser.add_argument("--sink", choices=("process", "thread"), default="process")
    args = parser.parse_args()
    from tests.conftest import TEST_ENV

    folder = Path(tempfile.mkdtemp(prefix="relance-bench-mail-"))
    sink: _ThreadSink | _ProcessSink = _ProcessSink() if args.sink == "process" else _ThreadSink()
    os.environ.update(TEST_ENV)
    os.environ.update(
        {
            "VAR_DIR": str(folder / "var"),
            "DATABASE_URL": f"sqlite:///{folder / 'bench.db'}",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(sink.port),
            "SMTP_SECURITY": "none",
            "SMTP_DOMAIN_RATE_PER_SECOND": "0",
            "MAIL_FROM": "relances@creancier.example",
        }
    )

    from sqlalchemy.orm import sessionmaker

    import relance.db.models
    from mail.gateway import SmtpMailGateway
    from relance.db.base import Base
    from relance.db.session import make_engine
    from relance.dunning.dispatcher import MAIL_BATCH, Dispatcher
    from relance.settings import get_settings
    from tests.mail.helpers import plan_email_reminders
    from tests.relance.dunning.helpers import FakeAssistant, FakeGateway
    from tests.support.sql_counter import SqlCount, counting

    get_settings.cache_clear()
    engine = make_engine(os.environ["DATABASE_URL"])
    Base.metadata.create_all(engine)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    serial = iter(range(10**9))

    def plan_reminders(count: int) -> None:
        with factory() as session:
            plan_email_reminders(session, [next(serial) for _ in range(count)])
            session.commit()

    def relance_pass(count: int) -> float:
        plan_reminders(count)
        gateway = SmtpMailGateway(get_settings())
        dispatcher = Dispatcher(
            factory,
            gateway=FakeGateway(),
            mail_gateway=gateway,
            assistant=FakeAssistant(),
            worker_id="bench",
        )
        sink.clear()
        with counting(engine) as counted:
            started = time.perf_counter()
            outcomes = dispatcher.run(now=NOW, limit=count)
            elapsed = time.perf_counter() - started
        counts.append(counted)
        gateway.transport.close()
        assert outcomes == {"sent": count}, outcomes
        return count / elapsed

    def bare_pass(sent: list[tuple[str, list[str], bytes]]) -> float:
        """The same bytes, the same envelopes, one smtplib connection."""
        sink.clear()
        started = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", sink.port) as smtp:
            for sender, recipients, data in sent:
                smtp.sendmail(sender, recipients, data)
        elapsed = time.perf_counter() - started
        assert len(sink.take()) == len(sent)
        return len(sent) / elapsed

    counts: list[SqlCount] = []
    relance_rates, bare_rates = [], []
    size = 0
    for _ in range(args.rounds):
        relance_rates.append(relance_pass(args.mails))
        sent = sink.take()
        assert len(sent) == args.mails, len(sent)
        size = sum(len(data) for _, _, data in sent) // len(sent)
        bare_rates.append(bare_pass(sent))
    sink.stop()
    per_mail = counts[-1].per(args.mails)
    batches = -(-args.mails // MAIL_BATCH)
    per_batch = counts[-1].per(batches)
    relance = statistics.median(relance_rates)
    bare = statistics.median(bare_rates)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    lines = [
        f"## E-mail throughput — dispatcher + SMTP gateway vs bare smtplib (issue 19, "
        f"{datetime.now(UTC):%Y-%m-%d}, commit {commit})",
        "",
        f"`python bench/mail/run.py --mails {args.mails} --rounds {args.rounds} --sink "
        f"{args.sink}`: one local aiosmtpd sink for both sides"
        f"{' in a process of its own' if args.sink == 'process' else ' on a thread of the bench'}"
        "; SQLite, an assistant that answers at once; the bare side "
        f"replays the bytes the sink received (mean {size / 1024:.1f} KiB: the first, discreet "
        "reminder, plain + HTML, no attachment) over one connection.",
        "",
        "| path | messages / s (median of rounds) | per round |",
        "| --- | ---: | --- |",
        f"| Dispatcher → SmtpMailGateway | {relance:.1f} | "
        f"{', '.join(f'{r:.1f}' for r in relance_rates)} |",
        f"| bare smtplib, same bytes | {bare:.1f} | {', '.join(f'{r:.1f}' for r in bare_rates)} |",
        "",
        f"**Ratio Relance / bare smtplib (medians): {relance / bare:.1%}** (aim ≥ 50%).",
        "",
        f"Per e-mail on the Relance side: {per_mail['queries']:.2f} SQL queries, "
        f"{per_mail['commits']:.3f} commits of which {per_mail['writing_commits']:.3f} wrote "
        f"(an fsync each); per batch of {MAIL_BATCH}: {per_batch['queries']:.1f} queries, "
        f"{per_batch['writing_commits']:.1f} writing commits. Load average at the end: {_load()}.",
        "",
    ]
    print("\n".join(lines))
    if args.append:
        with args.append.open("a", encoding="utf-8") as fh:
            fh.write("\n" + "\n".join(lines))
    return 0


class _ThreadSink:
    """The sink on a thread of this interpreter (tests/mail/sink.py as the tests use it)."""

    def __init__(self) -> None:
        from tests.mail.sink import Sink

        self._sink = Sink().start()
        self.port = self._sink.port

    def clear(self) -> None:
        self._sink.received.clear()

    def take(self) -> list[tuple[str, list[str], bytes]]:
        taken = [(r.sender, r.recipients, r.data) for r in self._sink.received]
        self._sink.received.clear()
        return taken

    def stop(self) -> None:
        self._sink.stop()


class _ProcessSink:
    """The same sink in a child process, driven over a pipe: `take` brings back what it
    received (envelopes and bytes) for the bare replay."""

    def __init__(self) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_sink_process, args=(child,), daemon=True)
        self._process.start()
        self.port = int(self._pipe.recv())

    def _ask(self, command: str) -> Any:
        self._pipe.send(command)
        return self._pipe.recv()

    def clear(self) -> None:
        self._ask("clear")

    def take(self) -> list[tuple[str, list[str], bytes]]:
        return list(self._ask("take"))

    def stop(self) -> None:
        self._ask("stop")
        self._process.join(10)


def _sink_process(pipe: Any) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.mail.sink import Sink

    sink = Sink().start()
    pipe.send(sink.port)
    while True:
        command = pipe.recv()
        if command == "take":
            pipe.send([(r.sender, r.recipients, r.data) for r in sink.received])
            sink.received.clear()
        elif command == "clear":
            sink.received.clear()
            pipe.send(None)
        else:
            sink.stop()
            pipe.send(None)
            return


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


if __name__ == "__main__":
    raise SystemExit(main())
