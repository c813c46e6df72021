"""Dispatcher throughput with a running wording experiment, as a ratio to without, in one run.

    python bench/experiments/run.py [--debtors 300] [--rounds 4] [--append BENCHMARKS.md]

One SQLite database, a recording gateway and an assistant that answers at once (the network and
Rasa are left out, so the experiment's own cost, an assignment and an exposure per contact and
the look-up of running experiments, is as large a share of the time as it can be). Each round
plans and dispatches a fresh set of debtors twice: once with no experiment, once with one running
on the first reminder's wording; the order alternates between rounds so that neither side always
runs on a warmer database. Throughput is contacts sent per second, the median of the rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday, 11:00 in Paris


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--debtors", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--append", type=Path)
    args = parser.parse_args()
    from tests.conftest import TEST_ENV

    folder = Path(tempfile.mkdtemp(prefix="relance-bench-exp-"))
    os.environ.update(TEST_ENV)
    os.environ["VAR_DIR"] = str(folder / "var")
    os.environ["DATABASE_URL"] = f"sqlite:///{folder / 'bench.db'}"

    from sqlalchemy.orm import sessionmaker

    import relance.db.models  # noqa: F401
    from relance.db.base import Base
    from relance.db.session import make_engine
    from relance.dunning.dispatcher import Dispatcher
    from relance.dunning.planner import plan
    from relance.experiments import service
    from relance.nlg.templates_store import active_templates
    from tests.factories import make_debtor, make_invoice
    from tests.relance.dunning.helpers import FakeAssistant, FakeGateway

    engine = make_engine(os.environ["DATABASE_URL"])
    Base.metadata.create_all(engine)
    factory = sessionmaker(bind=engine, expire_on_commit=False)

    def one_pass(with_experiment: bool) -> float:
        with factory() as session:
            experiment = None
            if with_experiment:
                spec = service.ExperimentSpec(
                    key=f"bench-{time.monotonic_ns()}",
                    name="bench",
                    template="utter_reminder_discreet",
                    arms=[service.ArmSpec("a", 1), service.ArmSpec("b", 0)],
                )
                experiment = service.create(
                    session, spec, actor="bench", templates=active_templates(session)
                )
                service.start(session, experiment, actor="bench", now=NOW)
            debtors = [
                make_debtor(session, channels=("sms", "whatsapp")) for _ in range(args.debtors)
            ]
            for debtor in debtors:
                make_invoice(session, debtor, due=NOW.date() - timedelta(days=3))
            plan(session, now=NOW, debtor_ids=[d.id for d in debtors])
            session.commit()
        gateway = FakeGateway()
        dispatcher = Dispatcher(
            factory, gateway=gateway, assistant=FakeAssistant(), worker_id="bench"
        )
        started = time.perf_counter()
        outcomes = dispatcher.run(now=NOW, limit=args.debtors)
        elapsed = time.perf_counter() - started
        assert outcomes.get("sent") == args.debtors, outcomes
        if experiment is not None:
            with factory() as session:
                service.stop(
                    session, session.merge(experiment), actor="bench", now=NOW, reason="done"
                )
                session.commit()
        return args.debtors / elapsed

    with_rates, without_rates = [], []
    for round_no in range(args.rounds):
        order = (False, True) if round_no % 2 == 0 else (True, False)
        for flag in order:
            (with_rates if flag else without_rates).append(one_pass(flag))
    # Medians: the machine is shared, and one round slowed by a neighbour moves a mean a lot.
    without = statistics.median(without_rates)
    with_exp = statistics.median(with_rates)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    lines = [
        f"## Dispatcher throughput with a running experiment (issue 21, "
        f"{datetime.now(UTC):%Y-%m-%d}, commit {commit})",
        "",
        f"`python bench/experiments/run.py --debtors {args.debtors} --rounds {args.rounds}`: "
        "SQLite, recording gateway, an assistant that answers at once; "
        f"{args.rounds} rounds of {args.debtors} contacts each way, order alternating.",
        "",
        "| run | contacts / s (median of rounds) | per round |",
        "| --- | ---: | --- |",
        f"| no experiment | {without:.1f} | {', '.join(f'{r:.1f}' for r in without_rates)} |",
        f"| experiment running on the first reminder | {with_exp:.1f} | "
        f"{', '.join(f'{r:.1f}' for r in with_rates)} |",
        "",
        f"**Ratio with / without (medians): {with_exp / without:.1%}** (aim ≥ 95%).",
        "",
    ]
    print("\n".join(lines))
    if args.append:
        with args.append.open("a", encoding="utf-8") as fh:
            fh.write("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
