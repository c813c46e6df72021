"""A tiny Rasa server (REST channel only) for channel tests: scripted replies, can be "down".

`script` maps a received text to the bot's messages (Rasa REST format: {"text": …} and/or
{"custom": …}); anything else gets the `default` answer. While `down` is set it answers 503,
which the Rasa client reports as AssistantUnavailable, exactly like an overloaded Rasa.

It also keeps a minimal tracker per sender (its user turns, with their metadata), served on
`GET /conversations/<id>/tracker`, where a `rewind` posted to `/tracker/events` removes the latest
user turn, as Rasa does. With `delay` set, a message is stored in the tracker first and answered
only after `delay` seconds: a client with a shorter read timeout gives up on a turn Rasa ran.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

Reply = list[dict[str, Any]]


@dataclass
class FakeRasa:
    script: dict[str, Reply] = field(default_factory=dict)
    default: Callable[[str], Reply] = lambda text: [{"text": f"echo: {text}"}]
    down: bool = False
    received: list[dict[str, Any]] = field(default_factory=list)
    delay: float = 0.0
    trackers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # user turns
    rewinds: list[str] = field(default_factory=list)  # sender ids, in order
    _server: ThreadingHTTPServer | None = None

    def tracker_texts(self, sender_id: str) -> list[str]:
        """The user turns Rasa's tracker holds for this sender (after rewinds)."""
        return [event["text"] for event in self.trackers.get(sender_id, [])]

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def texts(self) -> list[str]:
        return [r["message"] for r in self.received]

    def start(self) -> FakeRasa:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                if fake.down:
                    self._send(503, {"error": "down"})
                    return
                sender = _tracker_sender(self.path, "/tracker/events")
                if sender is not None:
                    for event in payload if isinstance(payload, list) else [payload]:
                        if event.get("event") == "rewind" and fake.trackers.get(sender):
                            fake.trackers[sender].pop()
                            fake.rewinds.append(sender)
                    self._send(200, {"sender_id": sender})
                    return
                if self.path.split("?")[0] != "/webhooks/rest/webhook":
                    self._send(404, {})
                    return
                fake.received.append(payload)
                text = payload.get("message", "")
                fake.trackers.setdefault(payload.get("sender"), []).append(
                    {"event": "user", "text": text, "metadata": payload.get("metadata") or {}}
                )
                reply = fake.script.get(text)
                reply = reply if reply is not None else fake.default(text)
                if fake.delay:
                    time.sleep(fake.delay)
                self._send(200, [{"recipient_id": payload.get("sender"), **m} for m in reply])

            def do_GET(self) -> None:
                sender = _tracker_sender(self.path, "/tracker")
                if sender is not None and not fake.down:
                    self._send(
                        200, {"sender_id": sender, "events": list(fake.trackers.get(sender, []))}
                    )
                    return
                self._send(503 if fake.down else 200, {"version": "3.6.21"})

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _tracker_sender(path: str, suffix: str) -> str | None:
    """The sender id of `/conversations/<id><suffix>`, else None."""
    route = urlsplit(path).path
    if not (route.startswith("/conversations/") and route.endswith(suffix)):
        return None
    return unquote(route[len("/conversations/") : -len(suffix)])
