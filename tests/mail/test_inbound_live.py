"""POST /mail/inbound on a real server: while the turn waits on Rasa, Rasa calls this api back
(for the reply's wording, /nlg). The route used to run the turn on the event loop, so that call
back waited until Rasa timed out and every e-mail was answered "the assistant is unavailable"."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from mail.gateway import SmtpMailGateway
from mail.signature import sign
from tests.factories import make_debtor
from tests.mail.conftest import DEBTOR_EMAIL, INBOUND_SECRET
from tests.mail.inbound_helpers import raw_mail
from tests.mail.sink import Sink
from tests.support.fake_rasa import FakeRasa


@pytest.fixture
def live_api(client: TestClient) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(client.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_rasa_can_call_the_api_back_during_an_email_turn(
    db: Session, live_api: str, sink: Sink, rasa: FakeRasa, mail_gateway: SmtpMailGateway
) -> None:
    callbacks: list[int] = []

    def answer(text: str) -> list[dict[str, str]]:
        # What Rasa does before it answers: ask the api for the wording.
        callbacks.append(httpx.get(f"{live_api}/openapi.json", timeout=20).status_code)
        return [{"text": f"echo: {text}"}]

    rasa.default = answer
    # The schema is built on first use (seconds on a loaded machine, beyond the tests' 2 s Rasa
    # timeout): build it before the turn, so the call back measures blocking, not start-up.
    assert httpx.get(f"{live_api}/openapi.json", timeout=60).status_code == 200
    make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    raw = raw_mail("Je paierai demain.", message_id="<live-1@client.example>")
    response = httpx.post(
        f"{live_api}/mail/inbound",
        content=raw,
        headers={"X-Relance-Signature": sign(INBOUND_SECRET, raw)},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert callbacks == [200]
    assert response.json()["status"] == "answered"
    plain = sink.received[-1].message.get_body(preferencelist=("plain",))
    assert plain is not None and "echo: Je paierai demain." in plain.get_content()
