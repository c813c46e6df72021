"""Dispatcher throughput with a running wording experiment, as a ratio to without, in one run.

    python bench/experiments/run.py [--debtors 300] [--rounds 4] [--append BENCHMARKS.md]

One SQLite database, a recording gateway and an assistant that answers at once (the network and
Rasa are left out, so the experiment's own cost, an exposure per contact and the look-up of
running experiments, is as large a share of the time as it can be). Two measures per round:

- passes: a fresh set of debtors planned and dispatched twice, once with no experiment, once with
  one running on the first reminder's wording; the order alternates between rounds so that
  neither side always runs on a warmer database. Contacts per second, median of the rounds.
- interleaved: one dispatch of debtors alternately in French and in English, with an experiment
  running on the French ones only; each group's dispatch is timed, so both kinds of contact share
  the same seconds of a shared machine (a neighbour's build slows both alike). The ratio is the
  mean time of a contact outside the experiment over the mean time of one inside it.

Also the SQL statements per contact, both ways (an SQLAlchemy event listener).
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

    from sqlalchemy import event, select
    from sqlalchemy.orm import Session, sessionmaker

    from relance.db.base import Base
    from relance.db.models import Debtor, DunningAction
    from relance.db.session import make_engine
    from relance.dunning.dispatcher import Dispatcher
    from relance.dunning.planner import plan
    from relance.experiments import service
    from relance.experiments.models import Experiment
    from relance.nlg.templates_store import active_templates
    from tests.factories import make_debtor, make_invoice
    from tests.relance.dunning.helpers import FakeAssistant, FakeGateway

    engine = make_engine(os.environ["DATABASE_URL"])
    Base.metadata.create_all(engine)
    factory = sessionmaker(bind=engine, expire_on_commit=False)

    statements = [0]

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_: object) -> None:
        statements[0] += 1

    def running_experiment(session: Session, language: str | None = None) -> Experiment:
        spec = service.ExperimentSpec(
            key=f"bench-{time.monotonic_ns()}",
            name="bench",
            template="utter_reminder_discreet",
            arms=[service.ArmSpec("a", 1), service.ArmSpec("b", 0)],
            language=language,
        )
        experiment = service.create(
            session, spec, actor="bench", templates=active_templates(session)
        )
        service.start(session, experiment, actor="bench", now=NOW)
        return experiment

    def stop(experiment: Experiment) -> None:
        with factory() as session:
            service.stop(session, session.merge(experiment), actor="bench", now=NOW, reason="done")
            session.commit()

    def planned(session: Session, languages: list[str]) -> None:
        debtors = [
            make_debtor(session, channels=("sms", "whatsapp"), language=language)
            for language in languages
        ]
        for debtor in debtors:
            make_invoice(session, debtor, due=NOW.date() - timedelta(days=3))
        plan(session, now=NOW, debtor_ids=[d.id for d in debtors])
        session.commit()

    def dispatcher() -> Dispatcher:
        return Dispatcher(factory, gateway=FakeGateway(), assistant=FakeAssistant(), worker_id="b")

    def one_pass(with_experiment: bool) -> tuple[float, float]:
        """Contacts per second, and SQL statements per contact."""
        with factory() as session:
            experiment = running_experiment(session) if with_experiment else None
            planned(session, ["fr"] * args.debtors)
        dispatch = dispatcher()
        statements[0] = 0
        started = time.perf_counter()
        outcomes = dispatch.run(now=NOW, limit=args.debtors)
        elapsed = time.perf_counter() - started
        count = statements[0]
        assert outcomes.get("sent") == args.debtors, outcomes
        if experiment is not None:
            stop(experiment)
        return args.debtors / elapsed, count / args.debtors

    def interleaved() -> tuple[float, float]:
        """Seconds spent on contacts outside and inside the experiment, one dispatch."""
        with factory() as session:
            experiment = running_experiment(session, language="fr")
            planned(session, ["fr", "en"] * (args.debtors // 2))
            french = set(
                session.scalars(
                    select(DunningAction.group_key)
                    .join(Debtor, Debtor.id == DunningAction.debtor_id)
                    .where(DunningAction.status == "planned", Debtor.language == "fr")
                )
            )
            keys = list(
                session.scalars(
                    select(DunningAction.group_key)
                    .where(DunningAction.status == "planned")
                    .group_by(DunningAction.group_key)
                    .order_by(DunningAction.group_key)
                )
            )
        dispatch = dispatcher()
        spent = {True: 0.0, False: 0.0}
        for key in keys:
            started = time.perf_counter()
            assert dispatch.dispatch_group(key, now=NOW) == "sent"
            spent[key in french] += time.perf_counter() - started
        stop(experiment)
        return spent[False], spent[True]

    with_rates, without_rates, with_sql, without_sql, outside, inside = [], [], [], [], [], []
    for round_no in range(args.rounds):
        order = (False, True) if round_no % 2 == 0 else (True, False)
        for flag in order:
            rate, per_contact = one_pass(flag)
            (with_rates if flag else without_rates).append(rate)
            (with_sql if flag else without_sql).append(per_contact)
        out_s, in_s = interleaved()
        outside.append(out_s)
        inside.append(in_s)
    # Medians: the machine is shared, and one round slowed by a neighbour moves a mean a lot.
    without = statistics.median(without_rates)
    with_exp = statistics.median(with_rates)
    mixed = sum(outside) / sum(inside)
    half = args.debtors // 2
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"## Dispatcher throughput with a running experiment (issue 21, "
        f"{datetime.now(UTC):%Y-%m-%d}, commit {commit})",
        "",
        f"`python bench/experiments/run.py --debtors {args.debtors} --rounds {args.rounds}`: "
        "SQLite, recording gateway, an assistant that answers at once; "
        f"{args.rounds} rounds of {args.debtors} contacts each way, order alternating, "
        f"plus an interleaved dispatch of {half} + {half} contacts per round. "
        f"Load average at the end: {load}.",
        "",
        "| run | contacts / s (median of rounds) | per round | SQL statements per contact |",
        "| --- | ---: | --- | ---: |",
        f"| no experiment | {without:.1f} | {', '.join(f'{r:.1f}' for r in without_rates)} "
        f"| {statistics.median(without_sql):.1f} |",
        f"| experiment running on the first reminder | {with_exp:.1f} | "
        f"{', '.join(f'{r:.1f}' for r in with_rates)} | {statistics.median(with_sql):.1f} |",
        "",
        f"**Ratio with / without, passes (medians): {with_exp / without:.1%}**; "
        f"**interleaved (time per contact outside / inside, all rounds): {mixed:.1%}** "
        f"(per round: {', '.join(f'{o / i:.1%}' for o, i in zip(outside, inside, strict=True))})"
        " (aim ≥ 95%).",
        "",
    ]
    print("\n".join(lines))
    if args.append:
        with args.append.open("a", encoding="utf-8") as fh:
            fh.write("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
