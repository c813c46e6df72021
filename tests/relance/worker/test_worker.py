"""Worker: embedded scheduler timing and isolation, the plan+dispatch job end to end, the jobs of
other features (a missing one stops start-up), and the Celery app when a broker is set."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy.orm import Session

from relance.db.models import Debtor
from relance.settings import Settings, get_settings
from relance.worker import jobs, runner
from relance.worker.embedded import EmbeddedScheduler
from tests.relance.dunning.helpers import FakeAssistant, FakeGateway
from tests.relance.worker.conftest import FROZEN_NOW


def test_embedded_scheduler_runs_each_job_on_its_interval_and_survives_failures() -> None:
    clock = [0.0]
    calls: list[str] = []

    def boom() -> None:
        calls.append("boom")
        raise RuntimeError("provider down")

    scheduler = EmbeddedScheduler(
        {
            "fast": (60, lambda: calls.append("fast")),
            "slow": (3600, lambda: calls.append("slow")),
            "boom": (60, boom),
        },
        clock=lambda: clock[0],
    )
    assert scheduler.run_pending() == ["fast", "slow", "boom"]  # everything runs at start
    clock[0] = 59
    assert scheduler.run_pending() == []
    clock[0] = 61
    assert scheduler.run_pending() == ["fast", "boom"]
    assert scheduler.failures == {"fast": 0, "slow": 0, "boom": 2}
    assert calls.count("fast") == 2 and calls.count("slow") == 1


def test_embedded_scheduler_thread_starts_and_stops() -> None:
    ran: list[int] = []
    scheduler = EmbeddedScheduler({"job": (0.01, lambda: ran.append(1))}, tick_seconds=0.01)
    scheduler.start()
    try:
        for _ in range(200):
            if len(ran) >= 2:
                break
            import time

            time.sleep(0.01)
    finally:
        scheduler.stop()
    assert len(ran) >= 2 and scheduler._thread is None


@freeze_time(FROZEN_NOW)
def test_plan_then_dispatch_jobs_send_due_reminders_once(
    gateway: FakeGateway, assistant: FakeAssistant, overdue_debtor: Debtor
) -> None:
    debtor = overdue_debtor
    assert jobs.plan_dunning()["stage:friendly"] >= 1
    assert jobs.dispatch_dunning()["sent"] >= 1
    assert any(s["debtor_id"] == debtor.id for s in gateway.sent)
    assert not any(k.startswith("stage:") for k in jobs.plan_dunning())
    assert not jobs.dispatch_dunning().get("sent")


def test_feature_jobs_call_their_module(db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []
    monkeypatch.setattr(jobs, "replay_all", lambda session, rasa: seen.append("replay") or 3)
    monkeypatch.setattr(
        jobs, "run_followups", lambda session, today: seen.append(("followups", today))
    )
    assert jobs.replay_pending() == 3
    with freeze_time("2026-11-23 10:00:00"):
        jobs.followups()
    assert seen == ["replay", ("followups", date(2026, 11, 23))]


@pytest.mark.parametrize(
    ("broken", "entry"),
    [
        ("relance.followups.service", "relance.worker.runner"),
        ("relance.privacy.retention", "relance.worker.runner"),
        ("relance.conversations.replay", "relance.worker.celery_app"),
        ("relance.wiring", "relance.worker.runner"),
    ],
)
def test_a_job_that_cannot_be_imported_stops_the_worker_at_start_up(
    broken: str, entry: str
) -> None:
    """A missing job module used to be swallowed (`jobs.optional`): the worker started and
    dunning follow-ups quietly stopped. Now importing the worker fails, naming the module."""
    code = (
        "import sys\n"
        f"sys.modules[{broken!r}] = None  # what a deleted or broken module looks like\n"
        f"import {entry}\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "ImportError" in done.stderr or "ModuleNotFoundError" in done.stderr
    assert broken in done.stderr


def test_a_command_module_that_cannot_be_imported_stops_the_cli() -> None:
    code = (
        "import sys\nsys.modules['relance.cli.privacy_commands'] = None\nimport relance.cli.main\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "relance.cli.privacy_commands" in done.stderr


def test_celery_app_has_a_task_and_a_beat_entry_per_job(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from relance.worker.celery_app import make_celery

    calls: list[str] = []
    monkeypatch.setattr(jobs, "SCHEDULE", {"dunning.plan": (900, lambda: calls.append("p"))})
    monkeypatch.setenv("CELERY_BROKER_URL", "memory://")
    get_settings.cache_clear()
    app = make_celery(get_settings(), task_always_eager=True)
    assert app.conf.beat_schedule == {
        "dunning.plan": {"task": "relance.dunning.plan", "schedule": 900}
    }
    app.tasks["relance.dunning.plan"].delay()
    assert calls == ["p"]


def test_no_broker_means_embedded(settings: Settings) -> None:
    from relance.worker.celery_app import make_celery

    with pytest.raises(RuntimeError, match="embedded"):
        make_celery(settings)


@pytest.mark.parametrize(
    ("beat", "expected"),
    [
        (True, ["worker", "--beat", "--loglevel=INFO", "-Q", "relance"]),
        (False, ["worker", "--loglevel=INFO", "-Q", "relance"]),
    ],
)
def test_celery_worker_runs_beat_only_when_asked(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, beat: bool, expected: list[str]
) -> None:
    """Replicated workers: one keeps beat, the others run `relance worker --no-beat`."""
    from celery import Celery

    started: list[list[str]] = []
    monkeypatch.setattr(Celery, "worker_main", lambda self, argv: started.append(argv))
    monkeypatch.setattr(runner, "_wire", lambda: None)
    monkeypatch.setenv("CELERY_BROKER_URL", "memory://")
    get_settings.cache_clear()
    runner.run_worker(get_settings(), beat=beat)
    assert started == [expected]


def test_no_beat_without_a_broker_is_refused_before_anything_starts(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from relance.cli.main import app

    wired: list[bool] = []
    monkeypatch.setattr(runner, "_wire", lambda: wired.append(True))
    result = CliRunner().invoke(app, ["worker", "--no-beat"])
    assert result.exit_code == 2
    assert "CELERY_BROKER_URL" in result.output
    assert wired == []


def test_the_mailbox_is_polled_at_its_own_interval_only_when_configured(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from relance.conversations import ports
    from relance.conversations.ports import MailboxPollReport

    assert "mail.poll" not in jobs.schedule(settings)
    assert "mail.poll" not in runner.embedded_scheduler(settings).schedule
    monkeypatch.setenv("IMAP_HOST", "imap.creancier.example")
    monkeypatch.setenv("IMAP_USERNAME", "relances@creancier.example")
    monkeypatch.setenv("IMAP_PASSWORD", "p9Lk2Xw7Qz4Rt1Vc")
    monkeypatch.setenv("IMAP_POLL_SECONDS", "120")
    get_settings.cache_clear()
    interval, job = runner.embedded_scheduler(get_settings()).schedule["mail.poll"]
    assert interval == 120

    class Poller:
        def poll(self) -> MailboxPollReport:
            report = MailboxPollReport(mailbox="imap test", unseen=2)
            report.outcomes["answered"] = 2
            return report

    monkeypatch.setattr(ports, "_mailbox_poller", Poller())
    assert job() == {
        "mailbox": "imap test",
        "unseen": 2,
        "answered": 2,
        "rejected": 0,
        "failed": 0,
        "waiting": 0,
    }
    monkeypatch.setenv("CELERY_BROKER_URL", "memory://")
    get_settings.cache_clear()
    from relance.worker.celery_app import make_celery

    app = make_celery(get_settings())
    assert app.conf.beat_schedule["mail.poll"] == {"task": "relance.mail.poll", "schedule": 120}
