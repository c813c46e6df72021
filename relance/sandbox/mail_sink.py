"""A local SMTP server for `make run`: every e-mail the stack sends lands in a folder, one `.eml`
per message, which the debtor simulator shows as the demo debtors' mailbox.

Nothing is relayed anywhere. Runs inside the sandbox process (`relance.sandbox.twilio_sandbox
--smtp-port`), on 127.0.0.1 only; the api's SMTP settings point at it by default
(SMTP_HOST=localhost, SMTP_PORT=8025, no TLS).
"""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from relance.private_files import private_dir, write_private


def mailbox_dir(var_dir: Path) -> Path:
    """The folder the local mailbox writes and the simulator reads."""
    return var_dir / "mailbox"


class MailboxHandler:
    """aiosmtpd handler: keep the exact bytes received, answer like an MTA with a queue id."""

    def __init__(self, folder: Path) -> None:
        self.folder = private_dir(folder)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        with self._lock:
            number = next(self._ids)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        write_private(self.folder / f"{stamp}-{number:05d}.eml", bytes(envelope.original_content))
        return f"250 2.0.0 Ok: queued as S{stamp[-12:]}{number:05d}"


def start(folder: Path, port: int, host: str = "127.0.0.1") -> Controller:
    """Listen on host:port in a background thread; the caller stops it with `.stop()`."""
    controller = Controller(MailboxHandler(folder), hostname=host, port=port)
    controller.start()
    return controller
