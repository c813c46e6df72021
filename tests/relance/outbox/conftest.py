from __future__ import annotations

import pytest

from tests.relance.outbox.dns import fake_dns


@pytest.fixture(autouse=True)
def dns(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {})
