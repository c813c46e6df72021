"""Routing and failover of the Rasa client over several instances, against real local HTTP servers.

Each fake instance is a threaded HTTP server that records the paths it served and answers like
Rasa's REST channel; a "down" instance is a port nothing listens on.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from relance.rasa_client import (
    AssistantUnavailable,
    InstanceHealth,
    RasaClient,
    client_from_settings,
    parse_urls,
    preference,
)
from relance.settings import Settings


class FakeRasa:
    def __init__(self, name: str, status: int = 200, delay_reply: threading.Event | None = None):
        self.name = name
        self.status = status
        self.served: list[tuple[str, dict]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                return

            def do_GET(self) -> None:
                self._reply(fake.status, {"model_file": "x.tar.gz"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"null")
                fake.served.append((self.path, body))
                if delay_reply is not None:
                    delay_reply.wait(5)
                if self.path.split("?")[0].endswith("/trigger_intent"):
                    payload: object = {"messages": [{"text": f"{fake.name}:{body['name']}"}]}
                else:
                    payload = [{"recipient_id": "x", "text": f"{fake.name}:{body}"}]
                self._reply(fake.status, payload)

            def _reply(self, status: int, payload: object) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def pair() -> Iterator[tuple[FakeRasa, FakeRasa]]:
    a, b = FakeRasa("a"), FakeRasa("b")
    yield a, b
    a.close()
    b.close()


def _senders_preferring(url: str, urls: list[str], count: int = 3) -> list[str]:
    found = [f"debtor-{n}" for n in range(1000) if preference(f"debtor-{n}", urls)[0] == url]
    return found[:count]


def test_one_url_is_the_default_and_stays_a_single_instance() -> None:
    assert parse_urls("http://localhost:5005/") == ["http://localhost:5005"]
    assert Settings(_env_file=None, environment="test").rasa_url == "http://localhost:5005"


def test_comma_separated_urls_are_trimmed_and_deduplicated() -> None:
    assert parse_urls(" http://a:5005/, http://b:5005 ,,http://a:5005") == [
        "http://a:5005",
        "http://b:5005",
    ]
    with pytest.raises(ValueError):
        parse_urls(" , ")


def test_routing_is_stable_spreads_senders_and_ignores_list_order() -> None:
    urls = ["http://rasa-0:5005", "http://rasa-1:5005"]
    firsts = [preference(f"debtor-{n}", urls)[0] for n in range(400)]
    assert firsts == [preference(f"debtor-{n}", list(reversed(urls)))[0] for n in range(400)]
    assert 120 < firsts.count(urls[0]) < 280, "both instances get a fair share"
    # Adding a third instance moves only the conversations that now prefer it.
    grown = [*urls, "http://rasa-2:5005"]
    moved = [
        n
        for n in range(400)
        if preference(f"debtor-{n}", grown)[0] != firsts[n]
        and preference(f"debtor-{n}", grown)[0] != grown[2]
    ]
    assert moved == []


def test_each_conversation_always_reaches_its_own_instance(pair: tuple[FakeRasa, FakeRasa]) -> None:
    a, b = pair
    urls = [a.url, b.url]
    client = RasaClient(",".join(urls), "tok", health=InstanceHealth())
    try:
        for sender in _senders_preferring(a.url, urls):
            for turn in range(3):
                replies = client.send_message(sender, f"t{turn}", {"channel": "sms"})
                assert replies[0].text.startswith("a:")
        for sender in _senders_preferring(b.url, urls):
            assert client.trigger_intent(sender, "EXTERNAL_reminder")[0].text == (
                "b:EXTERNAL_reminder"
            )
    finally:
        client.close()
    assert len(a.served) == 9 and len(b.served) == 3
    assert all(path == "/webhooks/rest/webhook" for path, _ in a.served)
    assert all(path.endswith("/trigger_intent?token=tok") for path, _ in b.served)


def test_a_down_instance_fails_over_to_the_other_then_is_tried_last(
    pair: tuple[FakeRasa, FakeRasa],
) -> None:
    a, _ = pair
    down = _closed_port_url()
    urls = [down, a.url]
    now = [0.0]
    health = InstanceHealth(cooldown=10, clock=lambda: now[0])
    client = RasaClient(urls, "tok", health=health)
    sender = _senders_preferring(down, urls, 1)[0]
    try:
        assert client.send_message(sender, "bonjour", {})[0].text.startswith("a:")
        assert health.is_down(down)
        assert client.instances_for(sender) == [a.url, down], "recent failure goes last"
        client.append_events(sender, [{"event": "pause"}])
        now[0] = 11.0  # cooldown over: the preferred instance is tried first again
        assert client.instances_for(sender) == [down, a.url]
        assert client.send_message(sender, "encore", {})[0].text.startswith("a:")
    finally:
        client.close()
    assert a.served[0][1]["message"] == "bonjour"
    assert a.served[1] == (
        f"/conversations/{sender}/tracker/events?token=tok",
        [{"event": "pause"}],
    )
    assert len(a.served) == 3, "every call served exactly once"


@pytest.mark.parametrize("status", [409, 502, 503])
def test_not_delivered_statuses_fail_over(status: int) -> None:
    loading, ok = FakeRasa("loading", status=status), FakeRasa("ok")
    client = RasaClient([loading.url, ok.url], "tok", health=InstanceHealth())
    sender = _senders_preferring(loading.url, [loading.url, ok.url], 1)[0]
    try:
        assert client.send_message(sender, "allo", {})[0].text.startswith("ok:")
    finally:
        client.close()
        loading.close()
        ok.close()
    assert len(loading.served) == 1 and len(ok.served) == 1


def test_a_500_is_not_replayed_elsewhere_the_turn_may_have_run() -> None:
    broken, ok = FakeRasa("broken", status=500), FakeRasa("ok")
    client = RasaClient([broken.url, ok.url], "tok", health=InstanceHealth())
    sender = _senders_preferring(broken.url, [broken.url, ok.url], 1)[0]
    try:
        with pytest.raises(AssistantUnavailable, match="500"):
            client.send_message(sender, "allo", {})
    finally:
        client.close()
        broken.close()
        ok.close()
    assert len(broken.served) == 1 and ok.served == []


def test_a_read_timeout_is_not_replayed_elsewhere() -> None:
    release = threading.Event()
    slow, ok = FakeRasa("slow", delay_reply=release), FakeRasa("ok")
    client = RasaClient([slow.url, ok.url], "tok", timeout=0.5, health=InstanceHealth())
    sender = _senders_preferring(slow.url, [slow.url, ok.url], 1)[0]
    try:
        with pytest.raises(AssistantUnavailable, match="ReadTimeout"):
            client.send_message(sender, "allo", {})
    finally:
        release.set()
        client.close()
        slow.close()
        ok.close()
    assert len(slow.served) == 1 and ok.served == []


def test_all_instances_down_raises_assistant_unavailable_naming_each() -> None:
    urls = [_closed_port_url(), _closed_port_url()]
    client = RasaClient(urls, "tok", health=InstanceHealth())
    try:
        with pytest.raises(AssistantUnavailable) as raised:
            client.send_message("debtor-1", "allo", {})
        assert all(url in str(raised.value) for url in urls)
        assert client.is_up() is False
    finally:
        client.close()


def test_health_reports_each_instance(pair: tuple[FakeRasa, FakeRasa]) -> None:
    a, _ = pair
    down = _closed_port_url()
    client = RasaClient([a.url, down], "tok", health=InstanceHealth())
    try:
        assert client.instances_up() == {a.url: True, down: False}
        assert client.is_up() is True
    finally:
        client.close()


def test_settings_list_reaches_every_instance(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, pair: tuple[FakeRasa, FakeRasa]
) -> None:
    from relance.settings import get_settings

    a, b = pair
    monkeypatch.setenv("RASA_URL", f"{a.url}, {b.url}")
    get_settings.cache_clear()
    client = client_from_settings()
    try:
        assert client.urls == [a.url, b.url]
    finally:
        client.close()
