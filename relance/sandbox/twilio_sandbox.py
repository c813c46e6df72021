"""A local Twilio REST stand-in for the demo: accepts Messages and Calls, records them, answers
with Twilio-shaped JSON. The api's twilio client points here through TWILIO_API_BASE. With
--smtp-port it also runs the local SMTP mailbox (relance/sandbox/mail_sink.py).

`GET /recorded` lists what was "sent", so the simulator and people can see outbound traffic.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from relance.sandbox import mail_sink

_RESOURCE = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC\w+)/(?P<kind>Messages|Calls)\.json$")


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []

    def add(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.requests.append(entry)


def make_handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:  # keep the demo console quiet
            return

        def _json(self, status: int, payload: object) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._json(200, {"status": "ok"})
            elif self.path == "/recorded":
                with recorder.lock:
                    self._json(200, list(recorder.requests))
            else:
                self._json(404, {"code": 20404, "message": "not found", "status": 404})

        def do_POST(self) -> None:
            match = _RESOURCE.match(self.path.split("?")[0])
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode()))
            if not match:
                self._json(404, {"code": 20404, "message": "not found", "status": 404})
                return
            kind = match["kind"]
            sid = ("SM" if kind == "Messages" else "CA") + secrets.token_hex(16)
            now = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
            recorder.add({"kind": kind, "sid": sid, "form": form, "at": now})
            resource = {
                "sid": sid,
                "account_sid": match["account"],
                "to": form.get("To"),
                "from": form.get("From"),
                "status": "queued",
                "date_created": now,
                "uri": f"{self.path[:-5]}/{sid}.json",
            }
            if kind == "Messages":
                resource.update(
                    {"body": form.get("Body", ""), "num_segments": "1", "direction": "outbound-api"}
                )
            self._json(201, resource)

    return Handler


def serve(port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    return ThreadingHTTPServer((host, port), make_handler(Recorder()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--smtp-port", type=int, help="also run the local SMTP mailbox here")
    parser.add_argument("--mailbox", type=Path, help="where the SMTP mailbox keeps the .eml files")
    args = parser.parse_args()
    if args.smtp_port:
        if args.mailbox is None:
            parser.error("--smtp-port needs --mailbox")
        # Started before the HTTP health endpoint answers: the stack sees the sandbox healthy
        # only once both are listening.
        mail_sink.start(args.mailbox, args.smtp_port)
    serve(args.port).serve_forever()


if __name__ == "__main__":
    main()
