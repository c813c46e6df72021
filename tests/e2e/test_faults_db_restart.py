"""PostgreSQL restarts under the real processes: api, action server and a worker keep running.

A private PostgreSQL cluster (initdb as the `postgres` OS user, in a temp folder, on a free port)
is started for this module only, so restarting it disturbs nobody. The api and the action server
run as real processes against it; the assistant is a scripted Rasa stand-in (the fault is the
database, not the dialogue), the Twilio REST API a local recorder. What a paying customer expects:

- a request that hits the outage fails cleanly: 503 + Retry-After, never a 500, nothing half-done;
- Twilio's retry of the same MessageSid after the restart is processed exactly once;
- the first request after the restart works without restarting any process (stale pooled
  connections are detected and replaced);
- a message whose turn was in flight when the database went away is kept and replayed once.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from payment_links.providers.sandbox import signature_header
from relance.db.models import Contact, Debtor, Message, WebhookEvent
from relance.db.models.enums import MessageStatus
from relance.db.session import make_engine
from relance.runtime import stack
from relance.settings import Settings
from tests.support.fake_rasa import FakeRasa
from tests.support.twilio_recorder import TwilioRecorder

from .conftest import AUTH_TOKEN, RunningStack, _free_port, _prepare_database

pytestmark = pytest.mark.e2e

PHONE = "+33639980005"  # demo debtor C-FR-005, used by no other end-to-end test
STRIPE_SECRET = "whsec_e2e_db_restart"


class PrivatePostgres:
    """A throw-away cluster owned by the `postgres` OS user (the shared server is never touched)."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not bins:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
        self.bin = Path(bins[-1]).parent
        self.root = Path(tempfile.mkdtemp(prefix="relance-pg-"))
        owner = pwd.getpwnam("postgres")
        os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.data = self.root / "data"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/relance_faults"

    def _as_postgres(self, tool: str, *args: str) -> None:
        command = ["runuser", "-u", "postgres", "--", str(self.bin / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed: {done.stdout}{done.stderr}")

    def init(self) -> None:
        self._as_postgres("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N")

    def _pg_ctl(self, action: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"),
            "-w", "-t", "60", "-m", "fast", "-o", options, action,
        )  # fmt: skip

    def start(self) -> None:
        self._pg_ctl("start")

    def stop(self) -> None:
        self._pg_ctl("stop")

    def restart(self) -> None:
        self._pg_ctl("restart")

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


# The worker's scheduler, driven one tick per input line so the test decides when jobs run; the
# process (and its engine and pool) lives across the database restarts, like `relance worker`.
WORKER = """
import json, logging, sys
logging.basicConfig(level=logging.WARNING)
from relance.worker import jobs, runner
from relance.worker.embedded import EmbeddedScheduler
runner._wire()
results, now = [], [0.0]
def replay():
    results.append(jobs.replay_pending())
scheduler = EmbeddedScheduler({"replay": (60, replay)}, clock=lambda: now[0])
for _line in sys.stdin:
    now[0] += 3600
    before = scheduler.failures["replay"]
    scheduler.run_pending()
    failed = scheduler.failures["replay"] > before
    print(json.dumps({"failed": failed, "replayed": None if failed else results[-1]}), flush=True)
"""


class Worker:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER], env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, text=True,
        )  # fmt: skip

    def tick(self) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("tick\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"the worker died (exit {self.process.poll()}); see {self._log.name}"
        return json.loads(line)

    def stop(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=30)
        self._log.close()


class Faults:
    def __init__(self, pg: PrivatePostgres, front: RunningStack, rasa: FakeRasa,
                 twilio: TwilioRecorder, worker: Worker, actions_url: str) -> None:  # fmt: skip
        self.pg, self.front, self.rasa, self.twilio = pg, front, rasa, twilio
        self.worker, self.actions_url = worker, actions_url

    def session(self) -> Session:
        return Session(make_engine(self.pg.url))

    def stripe(self, event_id: str) -> httpx.Response:
        payload = json.dumps(
            {"id": event_id, "object": "event", "type": "customer.created",
             "data": {"object": {"id": "cus_fault", "object": "customer"}}}
        ).encode()  # fmt: skip
        return httpx.post(
            self.front.base_url + "/stripe/webhook",
            content=payload,
            headers={"Stripe-Signature": signature_header(payload, STRIPE_SECRET)},
            timeout=30,
        )

    def run_action(self, debtor_id: int) -> httpx.Response:
        """What Rasa sends the action server at a session start (the action reads the debtor)."""
        tracker = {
            "sender_id": PHONE,
            "slots": {"session_started_metadata": {"debtor_id": str(debtor_id), "language": "fr"}},
            "latest_message": {},
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": None,
        }
        return httpx.post(
            self.actions_url + "/webhook",
            json={"next_action": "action_session_start", "sender_id": PHONE, "tracker": tracker,
                  "domain": {}, "version": "3.6.21"},
            timeout=30,
        )  # fmt: skip


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faults]:
    tmp = tmp_path_factory.mktemp("db-faults")
    pg = PrivatePostgres()
    rasa = FakeRasa().start()
    twilio = TwilioRecorder().start()
    running: stack.Stack | None = None
    worker: Worker | None = None
    try:
        pg.init()
        pg.start()
        from relance.db.provision import ensure_postgres_database

        ensure_postgres_database(pg.url)
        ports = stack.Ports(api=_free_port(), rasa=0, actions=_free_port(), twilio_sandbox=0)
        public = f"http://localhost:{ports.api}"
        env = stack.stack_env(
            {k: v for k, v in os.environ.items() if k not in ("TEST_DATABASE_URL",)},
            ports,
            {
                "ENVIRONMENT": "test",
                "DATABASE_URL": pg.url,
                "VAR_DIR": str(tmp / "var"),
                "RASA_URL": rasa.url,
                "RASA_TIMEOUT_SECONDS": "2",
                "TWILIO_API_BASE": twilio.url,
                "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "PUBLIC_BASE_URL": public,
                "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
                "CELERY_BROKER_URL": "",
            },
        )
        settings = Settings(
            _env_file=None,
            **{k.lower(): v for k, v in env.items() if k.lower() in Settings.model_fields},
        )
        _prepare_database(settings)
        running = stack.Stack(env=env, log_dir=tmp / "logs")
        running.start(stack.api_service(ports))
        running.start(stack.actions_service(ports))
        worker = Worker(env, tmp / "logs" / "worker.log")
        front = RunningStack(
            base_url=f"http://127.0.0.1:{ports.api}",
            public_base_url=public,
            sandbox_url=twilio.url,
            env=env,
            running=running,
        )
        yield Faults(pg, front, rasa, twilio, worker, env["ACTION_SERVER_URL"])
    finally:
        if worker is not None:
            worker.stop()
        if running is not None:
            running.stop()
        rasa.stop()
        twilio.stop()
        pg.destroy()


def _replies(response: httpx.Response) -> list[str]:
    return [(m.text or "").strip() for m in ET.fromstring(response.text).iter("Message")]


def _sid(n: int) -> str:
    return f"SMdbrestart{n:023d}"


def _debtor_id(faults: Faults) -> int:
    with faults.session() as session:
        return session.scalars(
            select(Debtor.id).join(Contact).where(Contact.address == PHONE)
        ).first()  # type: ignore[return-value]


def _inbound(faults: Faults, sid: str) -> list[Message]:
    with faults.session() as session:
        return list(session.scalars(select(Message).where(Message.provider_id == sid)).all())


def test_processes_survive_a_postgresql_restart(faults: Faults) -> None:
    faults.rasa.default = lambda text: [{"text": f"réponse à {text}"}]
    debtor_id = _debtor_id(faults)

    first = faults.front.signed_sms(PHONE, "Bonjour", sid=_sid(1))
    assert first.status_code == 200 and _replies(first) == ["réponse à Bonjour"]
    assert faults.run_action(debtor_id).status_code == 200
    assert faults.worker.tick() == {"failed": False, "replayed": 0}

    # A clean restart: every pooled connection of every process is now dead.
    faults.pg.restart()
    second = faults.front.signed_sms(PHONE, "Je peux payer vendredi", sid=_sid(2))
    assert second.status_code == 200, second.text
    assert _replies(second) == ["réponse à Je peux payer vendredi"]
    action = faults.run_action(debtor_id)
    assert action.status_code == 200, action.text
    assert {"event": "slot", "name": "segment", "value": "b2b"}.items() <= next(
        e for e in action.json()["events"] if e.get("name") == "segment"
    ).items(), "the action server read the debtor after the restart"
    assert faults.worker.tick() == {"failed": False, "replayed": 0}


def test_webhooks_during_an_outage_are_503_then_retries_are_processed_once(
    faults: Faults,
) -> None:
    faults.rasa.default = lambda text: [{"text": f"réponse à {text}"}]
    debtor_id = _debtor_id(faults)
    received_before = len(faults.rasa.received)

    faults.pg.stop()
    try:
        during = faults.front.signed_sms(PHONE, "Quel est mon solde ?", sid=_sid(3))
        stripe_during = faults.stripe("evt_db_restart_0001")
        worker_during = faults.worker.tick()
        action_during = faults.run_action(debtor_id)
        health = httpx.get(faults.front.base_url + "/healthz", timeout=10)
    finally:
        faults.pg.start()

    for response in (during, stripe_during):
        assert response.status_code == 503, response.text
        assert int(response.headers["retry-after"]) > 0
    assert worker_during == {"failed": True, "replayed": None}
    assert action_during.status_code >= 500  # Rasa logs it; the process stays up
    assert health.status_code == 200
    assert len(faults.rasa.received) == received_before, "no turn ran without its message stored"

    retried = faults.front.signed_sms(PHONE, "Quel est mon solde ?", sid=_sid(3))
    assert retried.status_code == 200, retried.text
    assert _replies(retried) == ["réponse à Quel est mon solde ?"]
    again = faults.front.signed_sms(PHONE, "Quel est mon solde ?", sid=_sid(3))
    assert _replies(again) == _replies(retried), "a late duplicate gets the same answer"
    assert [m.status for m in _inbound(faults, _sid(3))] == [MessageStatus.RECEIVED]
    assert faults.rasa.texts()[received_before:] == ["Quel est mon solde ?"]

    stripe_retry = faults.stripe("evt_db_restart_0001")
    assert stripe_retry.status_code == 200 and "duplicate" not in stripe_retry.json()
    assert faults.stripe("evt_db_restart_0001").json().get("duplicate") is True
    with faults.session() as session:
        stored = session.scalar(
            select(func.count())
            .select_from(WebhookEvent)
            .where(WebhookEvent.event_id.in_(["evt_db_restart_0001", _sid(3)]))
        )
    assert stored == 2

    following = faults.front.signed_sms(PHONE, "Merci", sid=_sid(4))
    assert following.status_code == 200 and _replies(following) == ["réponse à Merci"]
    assert faults.run_action(debtor_id).status_code == 200
    assert faults.worker.tick() == {"failed": False, "replayed": 0}


def test_turn_in_flight_when_the_database_goes_is_kept_and_replayed_once(
    faults: Faults,
) -> None:
    released = threading.Event()

    def slow(text: str) -> list[dict[str, Any]]:
        released.wait(60)
        return [{"text": f"réponse à {text}"}]

    faults.rasa.default = slow
    received_before = len(faults.rasa.received)
    sent_before = len(faults.twilio.messages())
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(faults.front.signed_sms, PHONE, "Je conteste la facture", _sid(5))
        deadline = time.monotonic() + 30
        while len(faults.rasa.received) == received_before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(faults.rasa.received) == received_before + 1, "the turn reached the assistant"
        faults.pg.stop()
        released.set()
        in_flight = future.result(timeout=60)
    faults.pg.start()
    faults.rasa.default = lambda text: [{"text": f"réponse à {text}"}]

    assert in_flight.status_code == 503, in_flight.text
    assert "retry-after" in in_flight.headers
    kept = _inbound(faults, _sid(5))
    assert [m.status for m in kept] == [MessageStatus.PENDING_ASSISTANT], "kept for the replay"

    assert faults.worker.tick() == {"failed": False, "replayed": 1}
    assert faults.worker.tick() == {"failed": False, "replayed": 0}
    sent = faults.twilio.messages()[sent_before:]
    assert [r.field("To") for r in sent] == [PHONE]
    # The first text the gateway sends in this conversation: the engine's AI disclosure in front.
    body = sent[0].field("Body") or ""
    assert body.endswith(" réponse à Je conteste la facture") and "assistant automatique" in body
    assert [m.status for m in _inbound(faults, _sid(5))] == [MessageStatus.RECEIVED]


def test_restart_while_the_assistant_thinks_still_answers_the_debtor(faults: Faults) -> None:
    """The database restarts during the Rasa call and is back before the turn is saved: the turn
    lock died with its connection, which must not turn a saved answer into an error."""
    released = threading.Event()

    def slow(text: str) -> list[dict[str, Any]]:
        released.wait(60)
        return [{"text": f"réponse à {text}"}]

    faults.rasa.default = slow
    received_before = len(faults.rasa.received)
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(faults.front.signed_sms, PHONE, "Je paierai lundi", _sid(6))
        deadline = time.monotonic() + 30
        while len(faults.rasa.received) == received_before and time.monotonic() < deadline:
            time.sleep(0.05)
        faults.pg.restart()
        released.set()
        answered = future.result(timeout=60)
    faults.rasa.default = lambda text: [{"text": f"réponse à {text}"}]

    assert answered.status_code == 200, answered.text
    assert _replies(answered) == ["réponse à Je paierai lundi"]
    assert [m.status for m in _inbound(faults, _sid(6))] == [MessageStatus.RECEIVED]
    following = faults.front.signed_sms(PHONE, "Merci beaucoup", sid=_sid(7))
    assert _replies(following) == ["réponse à Merci beaucoup"]
