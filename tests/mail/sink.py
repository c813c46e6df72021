"""A local SMTP sink (aiosmtpd) for the mail tests and the bench: no network beyond 127.0.0.1.

It keeps every message with its envelope, answers DATA with a queue id like a real MTA, and
can be told to answer the next messages with an error (`fail_next`), to take its time over
DATA like a slow server (`slow_seconds`; or `hold`: until a test sets that event, so what the
test does during the exchange never races its end; `in_data` says an exchange is under way,
`data_started` is set when one begins) or to count connections.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.controller import Controller

# The longest a held DATA waits: a test that never releases it fails instead of hanging.
HOLD_LIMIT = 30.0


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Sink:
    received: list[Received] = field(default_factory=list)
    fail_next: list[str] = field(default_factory=list)  # SMTP answers for the next DATAs
    connections: int = 0
    slow_seconds: float = 0.0  # how long DATA takes before the answer
    hold: threading.Event | None = None  # DATA answers once it is set (at most HOLD_LIMIT)
    in_data: bool = False
    data_started: threading.Event = field(default_factory=threading.Event)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.in_data = True
        self.data_started.set()
        try:
            if self.slow_seconds:
                await asyncio.sleep(self.slow_seconds)
            if self.hold is not None:
                await asyncio.to_thread(self.hold.wait, HOLD_LIMIT)
            if self.fail_next:
                return self.fail_next.pop(0)
            self.received.append(
                Received(
                    envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content)
                )
            )
            return f"250 2.0.0 Ok: queued as Q{next(self._ids):06d}"
        finally:
            self.in_data = False

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.connections += 1
        session.host_name = hostname
        return responses

    def start(self) -> Sink:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self._controller = Controller(self, hostname="127.0.0.1", port=port)
        self._controller.start()
        return self

    @property
    def port(self) -> int:
        assert self._controller is not None
        return int(self._controller.port)

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
