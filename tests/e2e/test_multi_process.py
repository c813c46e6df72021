"""The replicated topology of docs/deployment.md, as real processes on one machine.

Two api processes behind one public URL, two Rasa instances (same CI model, SQL tracker store on
PostgreSQL, Redis lock store), one action server, two Celery workers on a Redis broker. Checks:

- signed SMS webhooks from one debtor, alternately at both api processes, overlapping: the first
  two at the same instant (first contact on both processes), each later one as soon as the
  previous one is stored, while its turn still runs. Each inbound is stored once and answered, and
  Rasa's tracker (shared by both instances) holds the user turns in the order the api stored them
  and exactly the replies the api stored, in the same order;
- the same for several debtors at once;
- two workers running the dispatcher at the same time send each due reminder exactly once
  (outbound REST calls recorded by the Twilio sandbox);
- with one Rasa instance stopped, conversations that preferred it are served by the other.

Collected only when TEST_DATABASE_URL is PostgreSQL (see `collect_ignore` in conftest.py): the
advisory turn lock and Rasa's shared tracker store need it. Redis must listen on localhost:6379;
this module uses its databases 13 (broker) and 14 (lock store) and empties them first.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
from celery import Celery
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from relance.db.models import Contact, Conversation, Debtor, DunningAction, Message
from relance.db.session import make_engine
from relance.dunning.planner import plan
from relance.rasa_client import preference
from relance.runtime import stack
from relance.runtime.paths import BOT_DIR
from relance.runtime.rasa_config import write_endpoints
from relance.runtime.training import ensure_model
from relance.settings import Settings
from tests.factories import make_debtor, make_invoice

from .conftest import AUTH_TOKEN, RunningStack, _free_port, _prepare_database

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

REDIS_BROKER_DB = 13
REDIS_LOCK_DB = 14
RASA_TOKEN = "e2e-multi-rasa-token"


@dataclass
class MultiStack:
    apis: list[RunningStack]  # same public URL, one per api process
    rasa_urls: list[str]
    sandbox_url: str
    database_url: str
    broker_url: str
    running: stack.Stack
    log_dir: Path

    @functools.cached_property
    def engine(self) -> Engine:
        return make_engine(self.database_url)

    def session(self) -> Session:
        return Session(self.engine)

    def tracker_events(self, rasa_url: str, sender_id: str) -> list[dict]:
        response = httpx.get(
            f"{rasa_url}/conversations/{sender_id}/tracker",
            params={"token": RASA_TOKEN, "include_events": "ALL"},
            timeout=60,
        )
        response.raise_for_status()
        return response.json()["events"]


def _databases() -> tuple[str, str]:
    from relance.db.provision import ensure_postgres_database

    base = make_url(os.environ["TEST_DATABASE_URL"])
    name = base.database or "relance"
    urls = []
    for suffix in ("_e2e_multi", "_e2e_multi_tracker"):
        url = base.set(database=name + suffix).render_as_string(hide_password=False)
        ensure_postgres_database(url)
        urls.append(url)
    engine = make_engine(urls[1])  # a fresh Rasa tracker store: no events from earlier runs
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return urls[0], urls[1]


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MultiStack]:
    tmp = tmp_path_factory.mktemp("e2e-multi")
    api_ports = [_free_port(), _free_port()]
    rasa_ports = [_free_port(), _free_port()]
    ports = stack.Ports(
        api=api_ports[0], rasa=rasa_ports[0], actions=_free_port(), twilio_sandbox=_free_port()
    )
    app_db, tracker_db = _databases()
    for db in (REDIS_BROKER_DB, REDIS_LOCK_DB):
        redis.Redis(db=db).flushdb()
    broker = f"redis://localhost:6379/{REDIS_BROKER_DB}"
    rasa_urls = [f"http://127.0.0.1:{p}" for p in rasa_ports]
    public = "http://relance.example.test"  # the load balancer's URL, which Twilio signs
    env = stack.stack_env(
        {k: v for k, v in os.environ.items() if k != "TEST_DATABASE_URL"},
        ports,
        {
            "ENVIRONMENT": "test",
            "DATABASE_URL": app_db,
            "VAR_DIR": str(tmp / "var"),
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "PUBLIC_BASE_URL": public,
            "RASA_URL": ",".join(rasa_urls),
            "RASA_AUTH_TOKEN": RASA_TOKEN,
            "RASA_TIMEOUT_SECONDS": "60",  # a turn waits up to twice that for the previous one
            "RASA_TRACKER_STORE_URL": tracker_db,
            "REDIS_URL": f"redis://localhost:6379/{REDIS_LOCK_DB}",
            "CELERY_BROKER_URL": broker,
            "NLG_TOKEN": "e2e-multi-nlg-token",
        },
    )
    settings = Settings(
        _env_file=None,
        **{k.lower(): v for k, v in env.items() if k.lower() in Settings.model_fields},
    )
    _prepare_database(settings)
    model = ensure_model(BOT_DIR / "config.ci.yml")
    running = stack.Stack(env=env, log_dir=tmp / "logs")
    try:
        running.start(stack.twilio_sandbox_service(ports))
        apis = [
            dataclasses.replace(
                stack.api_service(dataclasses.replace(ports, api=p)), name=f"api-{i}"
            )
            for i, p in enumerate(api_ports)
        ]
        running.start_all(apis)
        running.start(stack.actions_service(ports))
        rasas = []
        for i, port in enumerate(rasa_ports):
            # Each instance renders its replies through "its" api; both share every store.
            endpoints = write_endpoints(
                settings,
                api_url=f"http://127.0.0.1:{api_ports[i]}",
                action_url=f"http://127.0.0.1:{ports.actions}/webhook",
                path=tmp / f"endpoints-{i}.yml",
            )
            service = stack.rasa_service(
                dataclasses.replace(ports, rasa=port), model, endpoints, RASA_TOKEN
            )
            rasas.append(dataclasses.replace(service, name=f"rasa-{i}"))
        running.start_all(rasas, timeout=1200)  # ~1 min each on an idle machine, 10 when loaded
        for url in rasa_urls:  # the first inference is slow: not a debtor's turn
            httpx.post(
                url + "/model/parse",
                params={"token": RASA_TOKEN},
                json={"text": "bonjour"},
                timeout=300,
            ).raise_for_status()
        running.start_all(
            [stack.celery_worker_service(f"worker-{i}", apis[0].health_url) for i in (0, 1)]
        )
        _wait_for_workers(broker, {"worker-0", "worker-1"})
        yield MultiStack(
            apis=[
                RunningStack(
                    base_url=f"http://127.0.0.1:{p}",
                    public_base_url=public,
                    sandbox_url=f"http://127.0.0.1:{ports.twilio_sandbox}",
                    env=env,
                    running=running,
                )
                for p in api_ports
            ],
            rasa_urls=rasa_urls,
            sandbox_url=f"http://127.0.0.1:{ports.twilio_sandbox}",
            database_url=app_db,
            broker_url=broker,
            running=running,
            log_dir=tmp / "logs",
        )
    finally:
        running.stop()


def _wait_for_workers(broker: str, names: set[str], timeout: float = 120) -> None:
    app = Celery(broker=broker)
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while time.monotonic() < deadline:
        seen |= {name.split("@")[0] for reply in app.control.ping(timeout=1) for name in reply}
        if names <= seen:
            return
    raise TimeoutError(f"workers {names - seen} never answered a ping")


# -- helpers ------------------------------------------------------------------------------------


def _replies(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [(m.text or "").strip() for m in ET.fromstring(response.text).iter("Message")]


def _fire(
    multi: MultiStack,
    conversations: dict[str, list[str]],
    tag: str,
    *,
    together: int = 1,
) -> dict[str, list[httpx.Response]]:
    """All debtors at once. Per debtor, the first `together` messages leave at the same instant;
    each later one leaves as soon as the previous one is stored, so it arrives while that turn is
    still running in Rasa (turns take seconds), yet the send order is definite. Messages go
    alternately to api-0 and api-1. Returns each debtor's responses in send order."""
    responses: dict[str, list[httpx.Response | None]] = {
        phone: [None] * len(turns) for phone, turns in conversations.items()
    }
    errors: list[BaseException] = []
    threads: list[threading.Thread] = []

    def send(phone: str, index: int, body: str) -> None:
        try:
            api = multi.apis[index % 2]
            responses[phone][index] = _signed_sms(api, phone, body, _sid(tag, phone, index))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def drive(phone: str, turns: list[str]) -> None:
        try:
            for index, body in enumerate(turns):
                thread = threading.Thread(target=send, args=(phone, index, body))
                thread.start()
                threads.append(thread)
                if index + 1 >= together:
                    _wait_stored(multi, _sid(tag, phone, index))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    drivers = [
        threading.Thread(target=drive, args=(phone, turns))
        for phone, turns in conversations.items()
    ]
    for thread in drivers:
        thread.start()
    for thread in drivers:
        thread.join(timeout=600)
    for thread in threads:
        thread.join(timeout=600)
    assert not errors, errors
    return {phone: [r for r in rs if r is not None] for phone, rs in responses.items()}


def _wait_stored(multi: MultiStack, sid: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    with Session(multi.engine) as session:
        while time.monotonic() < deadline:
            if session.scalar(select(Message.id).where(Message.provider_id == sid)):
                return
            session.rollback()  # a fresh snapshot on the next try
            time.sleep(0.05)
    raise TimeoutError(f"inbound {sid} never stored")


def _signed_sms(api: RunningStack, phone: str, body: str, sid: str) -> httpx.Response:
    """Like RunningStack.signed_sms, with room for a request that waits behind several turns."""
    fields = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "ACe2e0000000000000000000000000000",
        "From": phone,
        "To": "+33757000000",
        "Body": body,
        "NumMedia": "0",
    }
    signature = RequestValidator(AUTH_TOKEN).compute_signature(
        api.public_base_url + "/twilio/sms", fields
    )
    return httpx.post(
        api.base_url + "/twilio/sms",
        data=fields,
        headers={"X-Twilio-Signature": signature},
        timeout=300,
    )


def _sid(tag: str, phone: str, index: int) -> str:
    return f"SM{tag}{phone[-6:]}{index:03d}".ljust(34, "0")[:34]


def _check_conversation(
    multi: MultiStack, phone: str, turns: list[str], tag: str, rasa_urls: list[str] | None = None
) -> None:
    """Every inbound stored once and answered; Rasa's tracker (identical on every instance) holds
    the user turns in the api's order, each followed by exactly the replies the api stored."""
    sids = [_sid(tag, phone, i) for i in range(len(turns))]
    with multi.session() as session:
        conversation = session.scalars(
            select(Conversation)
            .join(Contact, Contact.debtor_id == Conversation.debtor_id)
            .where(Contact.address == phone, Contact.channel == "sms")
        ).one()
        inbound = session.scalars(
            select(Message)
            .where(Message.conversation_id == conversation.id, Message.provider_id.in_(sids))
            .order_by(Message.id)
        ).all()
        assert Counter(m.provider_id for m in inbound) == Counter(sids), "each stored exactly once"
        assert {m.status for m in inbound} == {"received"}, "no turn left pending or held"
        outbound = session.scalars(
            select(Message)
            .where(Message.conversation_id == conversation.id, Message.direction == "outbound")
            .order_by(Message.id)
        ).all()
        assert {m.author for m in outbound} == {"bot"}, "no holding reply: no turn deferred"
        stored_order = [m.body for m in inbound]
        stored_replies = [m.body for m in outbound]
        sender_id = conversation.sender_id
    assert sorted(stored_order) == sorted(turns)
    trackers = [multi.tracker_events(url, sender_id) for url in rasa_urls or multi.rasa_urls]
    assert all(t == trackers[0] for t in trackers), "the instances read the same tracker store"
    # Fresh conversations: every bot event belongs to these turns (the greeting that Rasa's
    # session start utters comes before the first user event).
    users = [e["text"] for e in trackers[0] if e["event"] == "user"]
    bots = [e["text"] for e in trackers[0] if e["event"] == "bot" and e.get("text")]
    assert users == stored_order, "Rasa saw the turns in the api's order, once each"
    assert bots == stored_replies, "the replies stored and sent are Rasa's, in Rasa's order"
    answered = [False] * len(users)
    seen = -1
    for event in trackers[0]:
        if event["event"] == "user":
            seen += 1
        elif event["event"] == "bot" and event.get("text") and seen >= 0:
            answered[seen] = True
    assert all(answered), f"every turn answered: {list(zip(users, answered, strict=True))}"


# -- tests --------------------------------------------------------------------------------------


@pytest.mark.timeout(2400)  # includes starting the topology (two Rasa instances) on a slow machine
def test_one_debtor_concurrent_messages_alternating_apis_keep_order(multi: MultiStack) -> None:
    phone = "+33639980001"
    turns = [
        "Bonjour",
        "Salut",
        "Combien je dois ?",
        "75011",
        "Je peux payer vendredi",
        "Merci",
        "Au revoir",
    ]
    # The two greetings leave together: the first contact of this debtor, on both api processes.
    responses = _fire(multi, {phone: turns}, "one", together=2)[phone]
    assert len(responses) == len(turns)
    answered = [reply for r in responses for reply in _replies(r)]
    assert answered, "the debtor got answers"
    _check_conversation(multi, phone, turns, "one")


@pytest.mark.timeout(600)
def test_several_debtors_at_once_keep_their_own_order(multi: MultiStack) -> None:
    conversations = {
        "+33639980002": ["Bonjour", "Salut", "Combien je dois ?", "69003", "Merci"],
        "+33639980003": ["Bonjour", "Bonsoir", "Quel est mon solde ?", "33000", "Au revoir"],
        "+12025550104": ["Hello", "Hi", "How much do I owe?", "60601", "Thanks"],
        "+447700900101": ["Hi", "Hello", "What is my balance?", "SW1A 1AA", "Bye"],
    }
    responses = _fire(multi, conversations, "many", together=2)
    for phone, turns in conversations.items():
        assert len(responses[phone]) == len(turns)
        _check_conversation(multi, phone, turns, "many")


def _local_midday_zone(now: datetime) -> str:
    """A fixed-offset zone where it is about noon now, inside the US contact window any day.

    The debtors must be located there only (see `relance.compliance.location`)."""
    offset = 12 - now.hour  # hours east of UTC
    return f"Etc/GMT{-offset:+d}"  # POSIX sign: Etc/GMT-2 is UTC+2


@pytest.mark.timeout(600)
def test_two_workers_send_each_due_reminder_exactly_once(multi: MultiStack) -> None:
    now = datetime.now(UTC)
    with multi.session() as session:
        debtors = [
            make_debtor(
                session,
                jurisdiction="US",
                timezone=_local_midday_zone(now),
                channels=("sms",),
                language="en",
                segment="consumer",
                # Nothing else may locate them (Regulation F: a time is convenient only if it
                # is in every zone the record points to): with the defaults, a Lyon address
                # and a +33 number added Paris, and the test failed when Paris was asleep.
                address_line=None,
                postcode=None,
                city=None,
                country="US",
                phone=f"+1800555{i:04d}",  # toll-free: libphonenumber locates nothing
            )
            for i in range(8)
        ]
        for debtor in debtors:
            make_invoice(session, debtor, due=now.date() - timedelta(days=3))
            make_invoice(session, debtor, due=now.date() - timedelta(days=10))
        ids = [d.id for d in debtors]
        phones = {d.id: d.contacts[0].address for d in debtors}
        report = plan(session, now=now, debtor_ids=ids)
        session.commit()
        assert len({g.group_key for g in report.groups}) == len(debtors)

    app = Celery(broker=multi.broker_url)
    for _ in range(4):  # more runs than workers: both run the dispatcher, over the same groups
        app.send_task("relance.dunning.dispatch", queue="relance")

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        with multi.session() as session:
            statuses = Counter(
                session.scalars(
                    select(DunningAction.status).where(DunningAction.debtor_id.in_(ids))
                )
            )
        if set(statuses) <= {"sent", "failed", "blocked", "cancelled"}:
            break
        time.sleep(2)
    assert statuses == Counter({"sent": 2 * len(debtors)}), statuses

    recorded = httpx.get(multi.sandbox_url + "/recorded", timeout=10).json()
    with multi.session() as session:
        for debtor_id, phone in phones.items():
            sent = [r["form"]["Body"] for r in recorded if r["form"].get("To") == phone]
            stored = session.scalars(
                select(Message.body)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(Conversation.debtor_id == debtor_id, Message.direction == "outbound")
                .order_by(Message.id)
            ).all()
            assert sent, f"debtor {debtor_id} got its reminder"
            assert sent == list(stored), "every REST call is a stored outbound, and vice versa"
            assert len(set(sent)) == len(sent), f"a reminder text went out twice: {sent}"
    runs = {
        name: (multi.log_dir / f"{name}.log").read_text().count("relance.dunning.dispatch[")
        for name in ("worker-0", "worker-1")
    }
    assert all(runs.values()), f"both workers ran the dispatcher: {runs}"


@pytest.mark.timeout(300)
def test_conversations_fail_over_when_their_rasa_instance_stops(multi: MultiStack) -> None:
    """Runs last: it stops rasa-1 for good. Its debtors are then served by rasa-0."""
    postcodes = {  # demo debtors no other test here talks to
        "+33639980004": "59000",
        "+33639980005": "44000",
        "+33639980006": "31000",
        "+33639980007": "67000",
        "+33639980008": "06000",
        "+33639980009": "13001",
        "+33639980010": "74000",
        "+33639980011": "75015",
        "+33639980012": "35000",
        "+33639980013": "13008",
        "+33639980014": "34000",
        "+33639980015": "21000",
    }
    with multi.session() as session:
        debtor_of = {
            phone: session.scalars(
                select(Debtor.id).join(Contact).where(Contact.address == phone)
            ).first()
            for phone in postcodes
        }
    stopped = multi.rasa_urls[1]
    orphans = {
        phone: ["Bonjour", "Combien je dois ?", postcode]
        for phone, postcode in postcodes.items()
        if preference(f"debtor-{debtor_of[phone]}", multi.rasa_urls)[0] == stopped
    }
    orphans = dict(list(orphans.items())[:3])
    assert orphans, "some conversation prefers the instance we stop"
    multi.running.stop("rasa-1")
    assert not _reachable(stopped)
    _fire(multi, orphans, "fail")
    for phone, turns in orphans.items():
        _check_conversation(multi, phone, turns, "fail", rasa_urls=multi.rasa_urls[:1])


def _reachable(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return False
    return True
