"""Due e-mail reminders sent in batches (relance/dunning/email_batch.py, issue 19).

The batched path must give what the one-group path gives, row for row and byte for byte (but
the Date header, the MIME boundaries and fresh portal and payment-link tokens), what a reminder
claims included, and keep its guarantees: a re-run never sends twice, a crash after the
pre-SMTP commit leaves at most two batches in doubt (never re-sent, reported by
`release_stale`), one
recipient's SMTP error fails only that e-mail and is retried or backed off as before, a dropped
connection is re-opened, and what an e-mail links to is committed before it leaves.
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import time as monotonic_clock
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from mail.gateway import SmtpMailGateway
from relance.db.base import Base
from relance.db.models import (
    AuditEvent,
    Contact,
    Conversation,
    Debtor,
    Dispute,
    DunningAction,
    Invoice,
    Message,
    PaymentLink,
)
from relance.db.session import make_engine
from relance.dunning.dispatcher import Dispatcher, release_stale
from relance.portal.models import PortalAccess
from relance.private_files import sent_mail_dir
from relance.settings import get_settings
from tests.mail.helpers import debtor_wrote_by_mail, plan_email_reminders
from tests.mail.sink import Received, Sink
from tests.relance.dunning.helpers import FakeAssistant, FakeGateway
from tests.support.sql_counter import counting

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # a Monday, 11:00 in Paris
TOKEN = re.compile(rb"/portal/[A-Za-z0-9_-]{20,}")
PAY_TOKEN = re.compile(rb"/pay/[A-Za-z0-9_-]{20,}")


def _engine(tmp_path: Path, name: str) -> Engine:
    """A real database (separate connections, real commits): a SQLite file, or a database of
    its own on the PostgreSQL server of the suite's second pass (TEST_DATABASE_URL)."""
    import relance.db.models  # noqa: F401  (fills Base.metadata)

    url = os.environ.get("TEST_DATABASE_URL", "")
    if url.startswith("postgres"):
        from sqlalchemy.engine import make_url

        from relance.db.provision import ensure_postgres_database
        from relance.settings import normalise_database_url

        base = make_url(normalise_database_url(url))
        own = base.set(database=f"{base.database}_{name}").render_as_string(hide_password=False)
        ensure_postgres_database(own)
        engine = make_engine(own)
        Base.metadata.drop_all(engine)
    else:
        engine = make_engine(f"sqlite:///{tmp_path / name}.db")
    Base.metadata.create_all(engine)
    return engine


@pytest.fixture
def engines(tmp_path: Path, sink: Sink) -> Iterator[tuple[Engine, Engine]]:
    """Two real databases: one for each path, filled alike."""
    made = [_engine(tmp_path, "single"), _engine(tmp_path, "batched")]
    yield made[0], made[1]
    for engine in made:
        engine.dispose()


def _debtor(db: Session, n: int, *, channels: tuple[str, ...] = ("email",), **kw: Any) -> Debtor:
    """A debtor with the same values in both databases (tests.factories numbers them apart)."""
    debtor = Debtor(
        customer_number=f"C-{n}",
        name=f"Camille Martin {n}",
        language="fr",
        email=f"camille{n}@client{n % 3}.example",
        address_line="8 avenue des Tilleuls",
        postcode="69003",
        city="Lyon",
        **kw,
    )
    db.add(debtor)
    db.flush()
    for channel in channels:
        address = debtor.email if channel == "email" else f"+3361234{n:04d}"
        db.add(Contact(debtor_id=debtor.id, channel=channel, address=address, consent=True))
    db.flush()
    db.refresh(debtor)
    return debtor


def _due(db: Session, debtor: Debtor, n: int, *, channels: list[str], **invoice: Any) -> None:
    """One invoice past due, its friendly reminder planned."""
    values: dict[str, Any] = {
        "number": f"F-2026-{n:04d}",
        "amount_minor": 12000 + n,
        "currency": "EUR",
        "issue_date": date(2026, 10, 1),
        "due_date": date(2026, 11, 20),
    }
    row = Invoice(debtor_id=debtor.id, **(values | invoice))
    db.add(row)
    db.flush()
    db.add(
        DunningAction(
            idempotency_key=f"book:{n}",
            invoice_id=row.id,
            debtor_id=debtor.id,
            stage="friendly",
            kind="message",
            group_key=f"book:{n:02d}",
            channels=channels,
            priority=100 - n,
        )
    )


def _book(db: Session) -> None:
    """Every outcome an e-mail reminder can have, in one run."""
    for n in (1, 2, 3):  # first reminders: discreet
        _due(db, _debtor(db, n), n, channels=["email"])
    verified = _debtor(db, 4)  # answered from this address, identity checked: the full reminder
    debtor_wrote_by_mail(db, verified, message_id="<answer-4@client.example>")
    _due(db, verified, 4, channels=["email"])
    _due(db, _debtor(db, 5), 5, channels=["email"], status="paid", paid_minor=12005)
    disputed = _debtor(db, 6)
    db.add(Dispute(reference="D-6", debtor_id=disputed.id, reason="not_received", status="open"))
    _due(db, disputed, 6, channels=["email"])
    opted_out = _debtor(db, 7)
    opted_out.contacts[0].opted_out_at = NOW - timedelta(days=2)
    _due(db, opted_out, 7, channels=["email"])
    to_sms = _debtor(db, 8, channels=("email", "sms"))
    to_sms.contacts[0].opted_out_at = NOW - timedelta(days=2)
    _due(db, to_sms, 8, channels=["email", "sms"])
    later = _debtor(db, 9, contact_from=time(14, 0), contact_until=time(18, 0))  # own hours
    _due(db, later, 9, channels=["email"])
    for n in (10, 11, 12):  # refused by the server: see _run
        _due(db, _debtor(db, n, channels=("email", "sms") if n == 12 else ("email",)), n,
             channels=["email", "sms"] if n == 12 else ["email"])  # fmt: skip
    db.flush()


commits: dict[int, int] = {}  # writing commits of the last run, by batch size


def _run(
    engine: Engine,
    sink: Sink,
    *,
    mail_batch: int,
    book: Callable[[Session], None] = _book,
    assistant: FakeAssistant | None = None,
) -> tuple[list[Received], dict[str, int]]:
    """Dispatch the book; the sink refuses #10 (4xx) and #11, #12 (5xx: #12 then goes by SMS)."""
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory() as session:
        book(session)
        session.commit()
    sink.received.clear()
    gateway = SmtpMailGateway(get_settings())
    refusals = {
        "camille10@client1.example": "451 4.3.0 Try again later",
        "camille11@client2.example": "550 5.1.1 No such user",
        "camille12@client0.example": "550 5.1.1 No such user",
    }
    send = gateway.transport.send

    def refusing(sender: str, recipient: str, data: bytes) -> Any:
        if recipient in refusals:
            sink.fail_next = [refusals[recipient]]
        return send(sender, recipient, data)

    gateway.transport.send = refusing  # type: ignore[method-assign]
    texts = FakeGateway()
    dispatcher = Dispatcher(
        factory,
        gateway=texts,
        mail_gateway=gateway,
        assistant=assistant or FakeAssistant(),
        worker_id="w",
        mail_batch=mail_batch,
    )
    try:
        with counting(engine) as counted:
            outcomes = dispatcher.run(now=NOW)
    finally:
        gateway.transport.close()
    commits[mail_batch] = counted.writing_commits
    return list(sink.received), dict(outcomes)


def _moment(value: Any) -> Any:
    """A time read by the clock differs between two runs; its place relative to NOW does not."""
    if isinstance(value, datetime):
        at = value if value.tzinfo else value.replace(tzinfo=UTC)
        return "clock" if abs(at - NOW) < timedelta(minutes=1) else at.isoformat()[:16]
    return value


# Clock readings, and what depends on them (the Date header is in the bytes hashed).
VOLATILE = {"claimed_at", "sent_at", "sha256", "eml", "smtp_response", "created_at", "expires_at"}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("…" if k in VOLATILE else _plain(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return _moment(value)


def _untokened(text: str) -> str:
    """A body without its links' random tokens (a fresh one for each link made)."""
    text = TOKEN.sub(b"/portal/<token>", text.encode())
    return PAY_TOKEN.sub(b"/pay/<token>", text).decode()


def _rows(engine: Engine) -> dict[str, Any]:
    """Every row the dispatch wrote or changed, without ids and clock readings."""
    with Session(engine) as db:
        messages = {m.id: m for m in db.scalars(select(Message))}
        numbers = {i: number for i, number in db.execute(select(Invoice.id, Invoice.number))}

        def message_of(message_id: int | None) -> Any:
            m = messages.get(message_id) if message_id else None
            return (m.channel, m.provider_id, _untokened(m.body)) if m else None

        return {
            "actions": sorted(
                (
                    a.group_key,
                    a.status,
                    a.outcome,
                    a.detail,
                    a.channel,
                    a.attempts,
                    _moment(a.sent_at),
                    _moment(a.next_attempt_at),
                    message_of(a.message_id),
                )
                for a in db.scalars(select(DunningAction))
            ),
            "messages": sorted(
                (
                    m.direction,
                    m.channel,
                    m.author,
                    _untokened(m.body),
                    m.address,
                    m.provider_id,
                    m.status,
                    m.error_code,
                    repr(_plain(m.extra)),
                )
                for m in messages.values()
            ),
            "audit": sorted(
                (e.actor, e.action, e.entity_type, repr(_plain(e.details)), e.debtor_id)
                for e in db.scalars(select(AuditEvent))
            ),
            "conversations": sorted(
                # The wall clock's reading (the two runs may straddle a minute): set or not.
                (c.debtor_id, c.sender_id, c.language, c.last_message_at is not None)
                for c in db.scalars(select(Conversation))
            ),
            "contacts": sorted(
                (c.address, c.status, c.failure_count) for c in db.scalars(select(Contact))
            ),
            "portal_links": len(db.scalars(select(PortalAccess)).all()),
            # What each payment link asks for: its debtor, amount and invoices (by number).
            "payment_links": sorted(
                (
                    link.debtor_id,
                    link.purpose,
                    link.provider,
                    link.amount_minor,
                    link.currency,
                    tuple(numbers[i] for i in link.invoice_ids or []),
                )
                for link in db.scalars(select(PaymentLink))
            ),
        }


def _reading(received: Received) -> Any:
    """What the recipient reads: every header but the Date (and the random boundary), every
    part's content."""
    message = received.message
    headers = [
        (k, str(v) if k.lower() != "content-type" else message.get_content_type())
        for k, v in message.items()
        if k.lower() != "date"
    ]
    parts = [
        (p.get_content_type(), p.get_content() if not p.is_multipart() else None)
        for p in message.walk()
    ]
    text = TOKEN.sub(b"/portal/<token>", repr((received.recipients, headers, parts)).encode())
    return PAY_TOKEN.sub(b"/pay/<token>", text)


def test_the_batched_path_writes_and_sends_what_the_one_group_path_does(
    engines: tuple[Engine, Engine], sink: Sink
) -> None:
    single_engine, batched_engine = engines
    single, outcomes = _run(single_engine, sink, mail_batch=0)
    batched, batched_outcomes = _run(batched_engine, sink, mail_batch=200)
    assert (
        batched_outcomes
        == outcomes
        == {
            "sent": 6,
            "cancelled": 2,
            "blocked": 1,
            "deferred": 1,
            "retry": 1,
            "failed": 1,
        }
    )
    assert [r.recipients for r in single] == [
        ["camille1@client1.example"],
        ["camille2@client2.example"],
        ["camille3@client0.example"],
        ["camille4@client1.example"],
    ]
    # Really two paths: one batch (three commits) and the two groups that went on by SMS on
    # the one-group path, against several commits per group.
    assert commits[200] <= 3 + 2 * 2 < commits[0]
    assert [_reading(r) for r in batched] == [_reading(r) for r in single]
    assert b"/portal/" in single[3].data  # the full reminder to the verified address
    one, many = _rows(single_engine), _rows(batched_engine)
    for table in one:
        assert many[table] == one[table], table
    statuses = {a[0]: (a[1], a[2]) for a in one["actions"]}
    assert statuses == {
        "book:01": ("sent", None),
        "book:02": ("sent", None),
        "book:03": ("sent", None),
        "book:04": ("sent", None),
        "book:05": ("cancelled", "paid"),
        "book:06": ("cancelled", "disputed"),
        "book:07": ("blocked", "no_channel_left"),
        "book:08": ("sent", None),  # by SMS, the e-mail address opted out
        "book:09": ("planned", "deferred:outside_hours"),
        "book:10": ("retry", "smtp_451"),
        "book:11": ("failed", "no_channel_left"),
        "book:12": ("sent", None),  # by SMS after the 5xx
    }


def _planned_in(db: Session, debtor: Debtor, invoice: Invoice, stage: str, group: str) -> None:
    """A stage of `invoice` planned by e-mail in the debtor's group of the day."""
    db.add(
        DunningAction(
            idempotency_key=f"{invoice.number}:{stage}",
            invoice_id=invoice.id,
            debtor_id=debtor.id,
            stage=stage,
            kind="message",
            group_key=group,
            channels=["email"],
        )
    )


def _invoice(
    db: Session, debtor: Debtor, number: str, amount: int, due: date, **kw: Any
) -> Invoice:
    invoice = Invoice(
        debtor_id=debtor.id,
        number=number,
        amount_minor=amount,
        currency="EUR",
        issue_date=date(2026, 10, 1),
        due_date=due,
        **kw,
    )
    db.add(invoice)
    db.flush()
    return invoice


def _content_book(db: Session) -> None:
    """Reminders whose group holds more than what is due: what each may claim is decided by
    `reminder_invoices` (the body, rendered here, the subject, the copies, the pay link)."""
    # After the local date the gateway and the local render read (the real clock) and NOW.
    later = max(date.today(), NOW.date()) + timedelta(days=30)
    mixed = _debtor(db, 21, segment="b2b")  # late-payment mentions: the amount must be right
    debtor_wrote_by_mail(db, mixed, message_id="<answer-21@client.example>")
    overdue = _invoice(db, mixed, "F-2026-0021", 10_000, date(2026, 11, 20))
    upcoming = _invoice(db, mixed, "F-2026-0121", 50_000, later)
    _planned_in(db, mixed, overdue, "firm", "content:21")  # names its due date, its RF
    _planned_in(db, mixed, upcoming, "pre_due", "content:21")  # its pre-due stage, same day
    parts = _debtor(db, 22)  # an e-invoice payable in three instalments, the first one late
    debtor_wrote_by_mail(db, parts, message_id="<answer-22@client.example>")
    first, *_ = [
        _invoice(
            db,
            parts,
            f"F-2026-0022 ({k}/3)",
            10_000,
            due,
            instalment_of="F-2026-0022",
            instalment_no=k,
        )
        for k, due in enumerate((date(2026, 11, 20), later, later + timedelta(days=30)), 1)
    ]
    _planned_in(db, parts, first, "friendly", "content:22")
    refunded = _debtor(db, 23)  # one invoice held by a refund (the system's dispute), one due
    debtor_wrote_by_mail(db, refunded, message_id="<answer-23@client.example>")
    held = _invoice(db, refunded, "F-2026-0023", 7_000, date(2026, 11, 20))
    due = _invoice(db, refunded, "F-2026-0123", 3_000, date(2026, 11, 20))
    db.add(
        Dispute(
            reference="D-23",
            debtor_id=refunded.id,
            invoice_id=held.id,
            reason="refunded",
            status="open",
        )
    )
    _planned_in(db, refunded, held, "firm", "content:23")
    _planned_in(db, refunded, due, "firm", "content:23")
    discreet = _debtor(db, 24)  # never answered: a discreet reminder names nothing
    _planned_in(
        db,
        discreet,
        _invoice(db, discreet, "F-2026-0024", 10_000, date(2026, 11, 20)),
        "friendly",
        "content:24",
    )
    _planned_in(
        db, discreet, _invoice(db, discreet, "F-2026-0124", 50_000, later), "pre_due", "content:24"
    )
    db.flush()


@pytest.fixture
def payments_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker's payments port (the sandbox provider): the reminders carry their links."""
    from payment_links.providers.sandbox import SandboxProvider
    from payment_links.wiring import PaymentLinksAdapter
    from relance.ledger import ports

    monkeypatch.setattr(ports, "_payments", PaymentLinksAdapter(SandboxProvider(get_settings())))


@pytest.mark.usefixtures("payments_port")
def test_both_paths_claim_only_what_each_reminder_is_about(
    engines: tuple[Engine, Engine], sink: Sink
) -> None:
    """The assistant is unreachable, so the reminder's own amount, due date, link and RF
    reference are rendered by the dispatcher: field by field, both paths agree, and each
    claims the overdue invoice only (not the one due later in the same group, not the
    instalments still to come, not the invoice a refund holds)."""
    from relance.bank_statements import rf
    from relance.rasa_client import AssistantUnavailable

    single_engine, batched_engine = engines
    single, outcomes = _run(
        single_engine,
        sink,
        mail_batch=0,
        book=_content_book,
        assistant=FakeAssistant(error=AssistantUnavailable("503")),
    )
    batched, batched_outcomes = _run(
        batched_engine,
        sink,
        mail_batch=200,
        book=_content_book,
        assistant=FakeAssistant(error=AssistantUnavailable("503")),
    )
    assert batched_outcomes == outcomes == {"sent": 4}
    assert [_reading(r) for r in batched] == [_reading(r) for r in single]
    one, many = _rows(single_engine), _rows(batched_engine)
    for table in one:
        assert many[table] == one[table], table
    # What the paths agree on is the rule: each reminder claims what it is about.
    by_recipient = {r.recipients[0]: r for r in batched}
    with Session(batched_engine) as db:
        ids = {number: i for number, i in db.execute(select(Invoice.number, Invoice.id))}
    references = {
        n: rf.printable(rf.for_invoice(ids[number]))
        for n, number in ((21, "F-2026-0021"), (23, "F-2026-0123"))
    }
    claimed = {}
    for n in (21, 22, 23):
        message = by_recipient[f"camille{n}@client{n % 3}.example"].message
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        text = body.get_content().replace("\xa0", " ").replace("\u202f", " ")
        assert "/pay/" in text and "20 novembre 2026" in text, text
        if n != 22:  # the firm stage prints the transfer reference: the claimed invoice's
            assert f"Référence de virement : {references[n]}" in text, text
        claimed[n] = (
            [str(p.get_filename()) for p in message.iter_attachments()],
            [a for a in ("100,00 €", "600,00 €", "300,00 €", "30,00 €", "70,00 €") if a in text],
        )
    assert claimed == {
        21: (["F-2026-0021.pdf"], ["100,00 €"]),
        22: (["F-2026-0022 (1/3).pdf"], ["100,00 €"]),
        23: (["F-2026-0123.pdf"], ["30,00 €"]),
    }, claimed
    assert "F-2026-0124" not in _reading(by_recipient["camille24@client0.example"]).decode()
    numbers = {link[0]: (link[3], link[5]) for link in many["payment_links"]}
    assert sorted(numbers.values()) == [
        (3_000, ("F-2026-0123",)),
        (10_000, ("F-2026-0021",)),
        (10_000, ("F-2026-0022 (1/3)",)),
    ]
    statuses = sorted((a[0], a[1], a[2]) for a in one["actions"])
    assert ("content:23", "cancelled", "disputed") in statuses


# -- the guarantees ------------------------------------------------------------------------------
@pytest.fixture
def factory(engines: tuple[Engine, Engine]) -> sessionmaker[Session]:
    return sessionmaker(bind=engines[1], expire_on_commit=False)


def _planned(factory: sessionmaker[Session], count: int, *, verified: int | None = None) -> None:
    with factory() as session:
        plan_email_reminders(session, range(count))
        if verified is not None:
            debtor = session.scalars(select(Debtor).order_by(Debtor.id)).all()[verified]
            debtor_wrote_by_mail(session, debtor)
        session.commit()


def _dispatcher(factory: sessionmaker[Session], gateway: SmtpMailGateway, **kw: Any) -> Dispatcher:
    return Dispatcher(
        factory, gateway=FakeGateway(), mail_gateway=gateway, assistant=FakeAssistant(), **kw
    )


class WorkerKilled(BaseException):
    """The worker dies (not an error it could handle): nothing after this point runs."""


def test_a_re_run_never_sends_twice(factory: sessionmaker[Session], sink: Sink) -> None:
    _planned(factory, 5)
    gateway = SmtpMailGateway(get_settings())
    try:
        assert dict(_dispatcher(factory, gateway).run(now=NOW)) == {"sent": 5}
        assert dict(_dispatcher(factory, gateway).run(now=NOW)) == {}
        # A job put back to `planned` by hand (or a retry of a group whose e-mail did go out)
        # finds its Message-ID sent: nothing leaves, the group is sent with that message.
        with factory() as session:
            action = session.scalars(select(DunningAction).order_by(DunningAction.id)).first()
            assert action is not None
            sent_message = action.message_id
            action.status, action.message_id = "planned", None
            session.commit()
        assert dict(_dispatcher(factory, gateway).run(now=NOW)) == {"sent": 1}
    finally:
        gateway.transport.close()
    assert len(sink.received) == 5
    with factory() as session:
        again = session.get(DunningAction, action.id)
        assert again is not None and again.status == "sent" and again.message_id == sent_message
        # The proof of each: the exact bytes the server took, kept under their SHA-256.
        folder = sent_mail_dir(get_settings().var_dir)
        kept = {
            (folder / str((m.extra or {})["eml"])).read_bytes()
            for m in session.scalars(select(Message).where(Message.channel == "email"))
        }
        assert kept == {r.data for r in sink.received}


def test_a_crash_after_the_pre_smtp_commit_leaves_two_batches_in_doubt_never_resent(
    factory: sessionmaker[Session], sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most two batches are in doubt: the one on the sending thread and the one prepared
    meanwhile. Their groups stay `sending` (release_stale reports them failed), their rows
    `queued`; a re-run sends none of them again, only what no batch had claimed."""
    _planned(factory, 7)
    gateway = SmtpMailGateway(get_settings())
    send = gateway.transport.send
    sends = []

    def dying(sender: str, recipient: str, data: bytes) -> Any:
        if sends:
            raise WorkerKilled
        sends.append(recipient)
        return send(sender, recipient, data)

    monkeypatch.setattr(gateway.transport, "send", dying)
    with pytest.raises(WorkerKilled):
        _dispatcher(factory, gateway, mail_batch=3).run(now=NOW)
    monkeypatch.setattr(gateway.transport, "send", send)
    assert len(sink.received) == 1
    with factory() as session:
        statuses = [a.status for a in session.scalars(select(DunningAction))]
        assert sorted(statuses) == ["planned"] + ["sending"] * 6
        queued = session.scalars(select(Message).where(Message.status == "queued")).all()
        assert len(queued) == 6  # both batches: committed before their first byte left
    # The re-run sends the group the dead worker never claimed, none of its two batches.
    assert dict(_dispatcher(factory, gateway).run(now=NOW)) == {"sent": 1}
    gateway.transport.close()
    assert len(sink.received) == 2
    assert sink.received[1].recipients == ["debtor6@client6.example"]
    with factory() as session:
        later = NOW + timedelta(hours=2)
        assert release_stale(session, now=later, older_than=timedelta(hours=1)) == 6
        session.commit()
        outcomes = sorted(a.outcome or "" for a in session.scalars(select(DunningAction)))
        assert outcomes == [""] + ["stale_claim"] * 6


def _statuses(factory: sessionmaker[Session]) -> dict[str, str]:
    with factory() as session:
        return {a.group_key: a.status for a in session.scalars(select(DunningAction))}


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = monotonic_clock.monotonic() + 10
    while not condition():
        assert monotonic_clock.monotonic() < deadline, what
        monotonic_clock.sleep(0.01)


def _queued(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return len(session.scalars(select(Message).where(Message.status == "queued")).all())


def test_the_next_batch_is_prepared_while_one_is_on_the_wire(
    factory: sessionmaker[Session], sink: Sink
) -> None:
    """The SMTP exchanges of a batch overlap the next batch's claim and composing (issue 19):
    while the server holds the first e-mail's DATA, the second batch is claimed and its rows
    committed; nothing of it leaves before the first batch is done, and all goes once."""
    import threading

    _planned(factory, 4)
    sink.hold = threading.Event()
    gateway = SmtpMailGateway(get_settings())
    outcomes: list[dict[str, int]] = []
    run = threading.Thread(
        target=lambda: outcomes.append(
            dict(_dispatcher(factory, gateway, mail_batch=2).run(now=NOW))
        )
    )
    run.start()
    try:
        assert sink.data_started.wait(10)
        _wait_for(lambda: list(_statuses(factory).values()).count("sending") == 4, "no overlap")
        # The second batch's claim commit comes before its composing commit (its messages):
        # waited for too, or the check could fall between the two (seen on PostgreSQL).
        _wait_for(lambda: _queued(factory) == 4, "the second batch was not composed meanwhile")
        assert sink.received == []
    finally:
        sink.hold.set()
        run.join(30)
        gateway.transport.close()
    assert outcomes == [{"sent": 4}]
    assert [r.recipients[0] for r in sink.received] == [
        f"debtor{n}@client{n}.example" for n in range(4)
    ]
    assert set(_statuses(factory).values()) == {"sent"}


def test_a_debtor_in_the_batch_on_the_wire_waits_for_its_outcome(
    factory: sessionmaker[Session], sink: Sink
) -> None:
    """A batch that shares a debtor with the one being sent is not claimed before that one is
    recorded: the pressure rules judge the second contact after the first one's outcome (here
    one contact a day: the second reminder waits for tomorrow)."""
    import threading

    from relance.policy.service import active_policy

    with factory() as session:
        first = plan_email_reminders(session, [0, 1])
        # A second reminder to debtor 0, in its own group: it cannot share the first batch.
        again = plan_email_reminders(session, [2])[0]
        again.debtor_id = first[0].debtor_id
        session.get(Invoice, again.invoice_id).debtor_id = first[0].debtor_id  # type: ignore[union-attr]
        policy = active_policy(session)
        session.commit()
    policy = policy.model_copy(
        update={"contact": policy.contact.model_copy(update={"max_contacts": 1, "per_days": 1})}
    )
    sink.hold = threading.Event()
    gateway = SmtpMailGateway(get_settings())
    outcomes: list[dict[str, int]] = []
    run = threading.Thread(
        target=lambda: outcomes.append(
            dict(_dispatcher(factory, gateway, mail_batch=2, policy=policy).run(now=NOW))
        )
    )
    run.start()
    try:
        assert sink.data_started.wait(10)
        monotonic_clock.sleep(0.3)  # time enough to prepare the next batch, were it allowed
        assert _statuses(factory)["bench:2"] == "planned"
    finally:
        sink.hold.set()
        run.join(30)
        gateway.transport.close()
    assert outcomes == [{"sent": 2, "deferred": 1}]
    assert len(sink.received) == 2


def test_another_channel_of_a_debtor_on_the_wire_waits_for_the_e_mail_outcome(
    factory: sessionmaker[Session], sink: Sink
) -> None:
    """A group on another channel is dispatched only once the e-mail batch on the wire is
    recorded: the SMS reminder of a debtor whose e-mail is being sent sees that contact (one a
    day here: it waits for tomorrow) instead of going out beside it."""
    import threading

    from relance.policy.service import active_policy

    with factory() as session:
        mailed, other = plan_email_reminders(session, [0, 1])
        texted = plan_email_reminders(session, [2])[0]
        texted.debtor_id = mailed.debtor_id
        texted.channels = ["sms"]
        # In this order: the first e-mail goes on the wire when the second one cuts the batch.
        mailed.priority, other.priority, texted.priority = 10, 9, 5
        session.get(Invoice, texted.invoice_id).debtor_id = mailed.debtor_id  # type: ignore[union-attr]
        session.add(
            Contact(debtor_id=mailed.debtor_id, channel="sms", address="+33612340002", consent=True)
        )
        policy = active_policy(session)
        session.commit()
    policy = policy.model_copy(
        update={"contact": policy.contact.model_copy(update={"max_contacts": 1, "per_days": 1})}
    )
    sink.hold = threading.Event()
    gateway = SmtpMailGateway(get_settings())
    texts = FakeGateway()
    dispatcher = Dispatcher(
        factory,
        gateway=texts,
        mail_gateway=gateway,
        assistant=FakeAssistant(),
        policy=policy,
        mail_batch=1,
    )
    outcomes: list[dict[str, int]] = []
    run = threading.Thread(target=lambda: outcomes.append(dict(dispatcher.run(now=NOW))))
    run.start()
    try:
        assert sink.data_started.wait(10)
        monotonic_clock.sleep(0.3)  # time enough to send the SMS, were it allowed
        assert texts.sent == []
        assert _statuses(factory)["bench:2"] == "planned"
    finally:
        sink.hold.set()
        run.join(30)
        gateway.transport.close()
    assert outcomes == [{"sent": 2, "deferred": 1}]
    assert texts.sent == [] and len(sink.received) == 2


def test_a_dropped_connection_is_reopened_and_the_batch_goes_on(
    factory: sessionmaker[Session], sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    _planned(factory, 4)
    gateway = SmtpMailGateway(get_settings())
    send = gateway.transport.send
    count = []

    def dropping(sender: str, recipient: str, data: bytes) -> Any:
        count.append(recipient)
        if len(count) == 3:  # the server dropped the idle connection
            connection = gateway.transport._connection
            assert connection is not None and connection.sock is not None
            connection.sock.shutdown(socket.SHUT_RDWR)
        return send(sender, recipient, data)

    monkeypatch.setattr(gateway.transport, "send", dropping)
    try:
        assert dict(_dispatcher(factory, gateway).run(now=NOW)) == {"sent": 4}
    finally:
        gateway.transport.close()
    assert len(sink.received) == 4
    assert gateway.transport.connections_opened == 2


def test_the_per_domain_rate_cap_spaces_the_batch(
    factory: sessionmaker[Session], sink: Sink
) -> None:
    from mail.transport import DomainRateLimiter

    with factory() as session:
        plan_email_reminders(session, [0, 50, 100])  # one domain: client0.example
        session.commit()
    gateway = SmtpMailGateway(get_settings())
    gateway.transport.limiter = DomainRateLimiter(10.0)
    started = monotonic_clock.monotonic()
    try:
        assert dict(_dispatcher(factory, gateway).run(now=NOW)) == {"sent": 3}
    finally:
        gateway.transport.close()
    assert monotonic_clock.monotonic() - started >= 0.2  # three sends, 0.1 s apart at least


def test_what_the_e_mail_links_to_is_committed_and_nothing_locked_during_smtp(
    tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite, whose write lock (BEGIN IMMEDIATE) would keep every webhook waiting."""
    import relance.db.models  # noqa: F401  (fills Base.metadata)

    engine = make_engine(f"sqlite:///{tmp_path / 'lock.db'}")
    Base.metadata.create_all(engine)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    _planned(factory, 3, verified=1)
    gateway = SmtpMailGateway(get_settings())
    send = gateway.transport.send
    seen: list[tuple[int, int]] = []

    def watched(sender: str, recipient: str, data: bytes) -> Any:
        other = sqlite3.connect(str(engine.url.database), timeout=0.2)
        try:
            other.execute("BEGIN IMMEDIATE")  # "database is locked" if the batch held it
            queued = other.execute(
                "SELECT count(*) FROM messages WHERE channel = 'email' AND status = 'queued'"
            ).fetchone()[0]
            links = other.execute("SELECT count(*) FROM portal_accesses").fetchone()[0]
            other.execute("ROLLBACK")
        finally:
            other.close()
        seen.append((queued, links))
        return send(sender, recipient, data)

    monkeypatch.setattr(gateway.transport, "send", watched)
    try:
        assert dict(_dispatcher(factory, gateway).run(now=NOW)) == {"sent": 3}
    finally:
        gateway.transport.close()
    assert [r for r in sink.received if TOKEN.search(r.data)]  # the verified debtor's link
    # Every row of the batch, and the portal link, committed before the first byte left.
    assert seen == [(3, 1), (3, 1), (3, 1)]
    engine.dispose()


class JumpingLimiter:
    """The dispatcher's rate limiter made the send wait until after the contact hours."""

    def __init__(self, moved: list[timedelta]) -> None:
        self.moved = moved

    def acquire(self, sender: str) -> float:
        self.moved[0] = timedelta(hours=10)  # 21:00 in Paris
        return 1.0


def test_a_send_that_waited_past_the_contact_hours_is_deferred_not_sent(
    factory: sessionmaker[Session], sink: Sink
) -> None:
    from relance.db.base import utcnow

    _planned(factory, 1)
    moved = [timedelta(0)]
    gateway = SmtpMailGateway(get_settings())
    dispatcher = _dispatcher(
        factory,
        gateway,
        limiter=JumpingLimiter(moved),
        clock=lambda: utcnow() + moved[0],
    )
    try:
        assert dict(dispatcher.run(now=NOW)) == {"deferred": 1}
        assert sink.received == []
        with factory() as session:
            action = session.scalars(select(DunningAction)).one()
            assert action.status == "planned" and action.outcome == "deferred:outside_hours"
            row = session.scalars(select(Message)).one()
            assert row.status == "failed" and (row.extra or {}).get("retryable")
        # The next morning: the same e-mail (same Message-ID, same row) goes out once.
        morning = _dispatcher(factory, gateway)
        assert dict(morning.run(now=NOW + timedelta(days=1))) == {"sent": 1}
    finally:
        gateway.transport.close()
    assert len(sink.received) == 1
    with factory() as session:
        assert session.scalars(select(Message)).one().status == "sent"


def test_the_garbage_collector_is_paused_for_a_batch_and_back_on_after(
    factory: sessionmaker[Session], sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its passes over a batch's objects cost a fifth of an e-mail's time (issue 19)."""
    import gc

    _planned(factory, 2)
    gateway = SmtpMailGateway(get_settings())
    deliver = gateway.deliver
    during: list[bool] = []

    def watched(mail: Any) -> None:
        during.append(gc.isenabled())
        deliver(mail)

    monkeypatch.setattr(gateway, "deliver", watched)
    assert gc.isenabled()
    try:
        assert dict(_dispatcher(factory, gateway).run(now=NOW)) == {"sent": 2}
    finally:
        gateway.transport.close()
    assert during == [False, False]
    assert gc.isenabled()
