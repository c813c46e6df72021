"""Pytest fixtures shared by tests/payment_links, tests/relance/ledger and tests/relance/followups.

Each of those conftests imports the fixtures it needs from here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from relance.conversations import ports as conversation_ports
from relance.ledger import ports as ledger_ports
from relance.settings import Settings, get_settings
from tests.support.payment_fakes import FakeGateway, localstripe_url
from tests.support.stripe_fake import StripeFake

STRIPE_TEST_KEY = "sk_test_relance"


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    previous = conversation_ports._gateway
    fake = FakeGateway()
    conversation_ports.install_gateway(fake)
    yield fake
    conversation_ports._gateway = previous


@pytest.fixture
def sandbox_payments(settings: Settings) -> Iterator[None]:
    """The payments port backed by payment_links with the sandbox provider."""
    from payment_links.providers.sandbox import SandboxProvider
    from payment_links.wiring import install

    previous = ledger_ports._payments
    install(SandboxProvider(settings))
    yield
    ledger_ports._payments = previous


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[StripeFake]:
    """The Checkout fake, forwarding PaymentIntents/Customers/PaymentMethods to localstripe."""
    fake = StripeFake(upstream=localstripe_url()).start()
    yield fake
    fake.stop()


@pytest.fixture
def stripe_settings(
    settings: Settings, stripe_server: StripeFake, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """Settings with a Stripe key, the client pointed at the local fake (never the internet)."""
    stripe_server.reset()
    monkeypatch.setenv("STRIPE_API_KEY", STRIPE_TEST_KEY)
    monkeypatch.setenv("STRIPE_API_BASE", stripe_server.base_url)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()
