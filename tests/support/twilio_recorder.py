"""A local stand-in for api.twilio.com: records every REST call and answers like Twilio.

Point the official client at it (`TWILIO_API_BASE=recorder.url`). Messages.json and Calls.json
get JSON resources with fresh SIDs; failures can be queued (HTTP status + Twilio error code, or a
delay longer than the client's timeout) to exercise retry and error mapping.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

_RESOURCE = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC\w+)/(?P<kind>Messages|Calls)\.json$")


@dataclass
class RecordedRequest:
    method: str
    path: str
    form: dict[str, list[str]]
    headers: dict[str, str]

    def field(self, name: str) -> str | None:
        values = self.form.get(name)
        return values[0] if values else None

    @property
    def account_sid_from_auth(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return None
        return base64.b64decode(auth[6:]).decode().split(":", 1)[0]


@dataclass
class Failure:
    status: int
    code: int | None = None
    message: str = "error"
    delay: float = 0.0


@dataclass
class TwilioRecorder:
    requests: list[RecordedRequest] = field(default_factory=list)
    _failures: deque[Failure] = field(default_factory=deque)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None, "recorder not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(
        self, status: int, code: int | None = None, message: str = "error", times: int = 1
    ) -> None:
        """The next `times` resource creations answer with this Twilio error."""
        for _ in range(times):
            self._failures.append(Failure(status=status, code=code, message=message))

    def delay_next(self, seconds: float) -> None:
        """The next call answers (successfully) only after `seconds`: longer than a timeout, it is one."""
        self._failures.append(Failure(status=201, delay=seconds))

    def messages(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/Messages.json")]

    def calls(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/Calls.json")]

    # -- server --------------------------------------------------------------------------------

    def start(self) -> TwilioRecorder:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                record = RecordedRequest(
                    method="POST",
                    path=self.path,
                    form=parse_qs(raw, keep_blank_values=True),
                    headers=dict(self.headers),
                )
                with recorder._lock:
                    recorder.requests.append(record)
                    failure = recorder._failures.popleft() if recorder._failures else None
                if failure is not None and failure.delay:
                    time.sleep(failure.delay)
                    failure = None
                matched = _RESOURCE.match(self.path.split("?")[0])
                if matched is None:
                    self._json(404, {"code": 20404, "message": "not found", "status": 404})
                elif failure is not None:
                    self._json(
                        failure.status,
                        {
                            "code": failure.code,
                            "message": failure.message,
                            "status": failure.status,
                            "more_info": f"https://www.twilio.com/docs/errors/{failure.code}",
                        },
                    )
                else:
                    self._json(201, _resource(matched["account"], matched["kind"], record))

            def do_GET(self) -> None:
                self._json(404, {"code": 20404, "message": "not found", "status": 404})

            def _json(self, status: int, body: dict[str, Any]) -> None:
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


def _resource(account: str, kind: str, record: RecordedRequest) -> dict[str, Any]:
    prefix = "SM" if kind == "Messages" else "CA"
    sid = prefix + uuid.uuid4().hex
    common = {
        "sid": sid,
        "account_sid": account,
        "to": record.field("To"),
        "from": record.field("From"),
        "status": "queued",
        "date_created": "Mon, 23 Nov 2026 18:00:00 +0000",
        "uri": f"/2010-04-01/Accounts/{account}/{kind}/{sid}.json",
    }
    if kind == "Messages":
        body = record.field("Body") or ""
        return {
            **common,
            "body": body,
            "num_segments": "1",
            "direction": "outbound-api",
            "messaging_service_sid": None,
            "error_code": None,
            "error_message": None,
        }
    return {**common, "direction": "outbound-api", "answered_by": None, "duration": None}
