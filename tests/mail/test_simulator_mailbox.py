"""`make run`'s local SMTP mailbox and the simulator's mailbox page: an e-mail the stack sends
lands as a `.eml` file, the demo debtor reads it (text and sandboxed HTML) and answers; the
answer travels the signed inbound route and the assistant's reply lands in the same mailbox."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from mail.gateway import SmtpMailGateway
from relance.conversations import ports
from relance.db.models import Message
from relance.sandbox import mail_sink
from relance.settings import Settings, get_settings
from tests.factories import make_debtor
from tests.mail.conftest import DEBTOR_EMAIL, point_smtp_at
from tests.mail.test_outbound import _invoice, _reminder, _send
from tests.support.fake_rasa import FakeRasa


@pytest.fixture
def mailbox(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The sandbox's SMTP mailbox on a free port, the settings and gateway pointing at it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = mail_sink.mailbox_dir(get_settings().var_dir)
    controller = mail_sink.start(folder, port)
    point_smtp_at(port, monkeypatch)
    installed = SmtpMailGateway(get_settings())
    monkeypatch.setattr(ports, "_mail_gateway", installed)
    try:
        yield folder
    finally:
        installed.transport.close()
        controller.stop()


def _through(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The simulator posts to its own api over HTTP; here that api is the TestClient's."""
    posted: list[str] = []

    def post(url: str, **kwargs: object) -> httpx.Response:
        path = url.split("/", 3)[3]
        posted.append("/" + path)
        return client.post("/" + path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("relance.simulator.endpoints.httpx.post", post)
    return posted


def _wait_for(folder: Path, count: int) -> list[Path]:
    deadline = time.monotonic() + 10
    while len(files := sorted(folder.glob("*.eml"))) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return files


def test_the_sent_reminder_is_read_and_answered_in_the_simulator(
    db: Session,
    client: TestClient,
    mailbox: Path,
    rasa: FakeRasa,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    sent = _send(db, _gateway(), debtor.id, _reminder(_invoice(db, debtor)))
    db.commit()
    [kept] = _wait_for(mailbox, 1)
    assert kept.stat().st_mode & 0o077 == 0  # a debtor's debt: readable by the owner only

    page = client.get(f"/simulator/{debtor.id}/mailbox")
    assert page.status_code == 200
    assert "Deuxième relance : facture F-2026-0042" in page.text
    assert "Malgré nos relances" in page.text and "F-2026-0042.pdf" in page.text

    html = client.get(f"/simulator/{debtor.id}/mailbox/{kept.name}/html")
    assert html.status_code == 200 and "Malgré nos relances" in html.text
    assert "sandbox" in html.headers["content-security-policy"]

    posted = _through(client, monkeypatch)
    answered = client.post(
        f"/simulator/{debtor.id}/mailbox/{kept.name}/reply",
        data={"text": "Je paierai vendredi."},
        follow_redirects=False,
    )
    assert answered.status_code == 303, answered.text
    assert posted == ["/mail/inbound"]
    [turn] = rasa.received
    assert turn["message"] == "Je paierai vendredi."  # the quoted reminder was stripped
    inbound = db.scalars(
        select(Message).where(Message.direction == "inbound", Message.channel == "email")
    ).one()
    assert inbound.extra["in_reply_to"] == [sent.provider_id]  # threaded to the reminder
    files = _wait_for(mailbox, 2)
    assert len(files) == 2
    after = client.get(f"/simulator/{debtor.id}/mailbox?sent=1")
    assert "Re: Deuxième relance" in after.text and "echo: Je paierai vendredi" in after.text


def _gateway() -> SmtpMailGateway:
    installed = ports._mail_gateway
    assert isinstance(installed, SmtpMailGateway)
    return installed


@pytest.mark.parametrize(
    "name", ["../../secret.eml", "20261205T000000000000-00001.txt", "x.eml", "%2e%2e%2fa.eml"]
)
def test_no_file_outside_the_mailbox_can_be_named(
    db: Session, client: TestClient, mailbox: Path, name: str
) -> None:
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    (mailbox.parent / "secret.eml").write_bytes(b"To: " + DEBTOR_EMAIL.encode() + b"\n\nsecret")
    for path in (f"/simulator/{debtor.id}/mailbox/{name}/html",):
        response = client.get(path)
        assert response.status_code == 404, (name, response.status_code)
    reply = client.post(f"/simulator/{debtor.id}/mailbox/{name}/reply", data={"text": "x"})
    assert reply.status_code == 404


def test_another_debtors_email_is_not_shown(db: Session, client: TestClient, mailbox: Path) -> None:
    owner = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    other = make_debtor(
        db, channels=("email", "sms"), email="someone.else@client.example", phone="+33639981299"
    )
    _send(db, _gateway(), owner.id, _reminder(_invoice(db, owner)))
    db.commit()
    [kept] = _wait_for(mailbox, 1)
    assert "F-2026-0042" not in client.get(f"/simulator/{other.id}/mailbox").text
    assert client.get(f"/simulator/{other.id}/mailbox/{kept.name}/html").status_code == 404
