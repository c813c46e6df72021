"""The Rasa client is created for every debtor turn: it must not rebuild its TLS context each time
(loading the CA bundle cost tens of ms of CPU per turn, bench/turn_latency)."""

from __future__ import annotations

import ssl

import pytest

from relance import rasa_client
from relance.rasa_client import RasaClient


def test_clients_share_one_ca_bundle_load(monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(args or kwargs)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    rasa_client._tls_context.cache_clear()
    clients = [RasaClient("https://rasa.example:5005", "tok") for _ in range(5)]
    for client in clients:
        client.close()
    assert len(loads) == 1


def test_shared_context_still_verifies_servers() -> None:
    context = rasa_client._tls_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0  # the CA bundle is loaded
