"""A tiny Rasa server (REST channel only) for channel tests: scripted replies, can be "down".

`script` maps a received text to the bot's messages (Rasa REST format: {"text": …} and/or
{"custom": …}); anything else gets the `default` answer. While `down` is set it answers 503,
which the Rasa client reports as AssistantUnavailable, exactly like an overloaded Rasa.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = list[dict[str, Any]]


@dataclass
class FakeRasa:
    script: dict[str, Reply] = field(default_factory=dict)
    default: Callable[[str], Reply] = lambda text: [{"text": f"echo: {text}"}]
    down: bool = False
    received: list[dict[str, Any]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

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
                if self.path.split("?")[0] != "/webhooks/rest/webhook":
                    self._send(404, {})
                    return
                fake.received.append(payload)
                text = payload.get("message", "")
                reply = fake.script.get(text)
                reply = reply if reply is not None else fake.default(text)
                self._send(200, [{"recipient_id": payload.get("sender"), **m} for m in reply])

            def do_GET(self) -> None:
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
