"""Fakes for the payments, ledger and follow-up tests: a storing gateway, a webhook capture,
localstripe (their rows: tests.factories)."""

from __future__ import annotations

import atexit
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy.orm import Session

from relance.conversations.service import store_outbound
from relance.db.models import (
    Contact,
    Conversation,
    Debtor,
    Message,
)
from relance.db.models.enums import MessageStatus


@dataclass
class SentText:
    debtor_id: int | None
    address: str
    text: str


@dataclass
class FakeGateway:
    """Stores the outbound message like the real gateway; remembers what was sent."""

    sent: list[SentText] = field(default_factory=list)

    def send_text(
        self,
        session: Session,
        *,
        conversation: Conversation,
        contact: Contact,
        text: str,
        author: str,
        first_contact_template: bool = False,
    ) -> Message:
        self.sent.append(SentText(conversation.debtor_id, contact.address, text))
        return store_outbound(
            session,
            conversation,
            contact.channel,
            text,
            author,
            status=MessageStatus.QUEUED,
            address=contact.address,
        )

    def place_call(
        self, session: Session, *, conversation: Conversation, contact: Contact, purpose: str
    ) -> Message:
        raise AssertionError("no call expected")

    def texts_for(self, debtor: Debtor) -> list[str]:
        return [s.text for s in self.sent if s.debtor_id == debtor.id]


class WebhookCapture:
    """A local HTTP endpoint that keeps what a webhook sender (localstripe) posts to it."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[bytes, dict[str, str]]] = []
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                capture.deliveries.append((body, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(200)
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}/hook"

    def wait_for(self, event_type: str, timeout: float = 15) -> tuple[bytes, dict[str, str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for body, headers in self.deliveries:
                if json.loads(body).get("type") == event_type:
                    return body, headers
            time.sleep(0.1)
        raise AssertionError(f"no {event_type} delivered")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


_localstripe: tuple[subprocess.Popen[bytes], str] | None = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def localstripe_url() -> str:
    """Start localstripe once per test process (localhost, free port); stopped at exit."""
    global _localstripe
    if _localstripe is not None and _localstripe[0].poll() is None:
        return _localstripe[1]
    exe = Path(sys.executable).parent / "localstripe"
    port = _free_port()
    proc = subprocess.Popen(
        [str(exe), "--port", str(port), "--from-scratch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            request = urllib.request.Request(
                f"{url}/v1/customers", headers={"Authorization": "Bearer sk_test_probe"}
            )
            urllib.request.urlopen(request, timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("localstripe did not start") from None
            time.sleep(0.2)
    atexit.register(proc.terminate)
    _localstripe = (proc, url)
    return url
