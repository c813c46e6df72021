"""The dunning tests run the dispatcher as the worker does: with a payments port installed
(`relance.wiring.wire()` in production), here the sandbox provider, so reminders carry links."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def payments_port(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from payment_links.providers.sandbox import SandboxProvider
    from payment_links.wiring import PaymentLinksAdapter
    from relance.ledger import ports
    from relance.settings import get_settings

    monkeypatch.setattr(ports, "_payments", PaymentLinksAdapter(SandboxProvider(get_settings())))
    yield
