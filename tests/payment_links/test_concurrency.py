"""Double clicks on real, separate database connections: one checkout, one payment.

These tests commit (two requests must see each other's work), so they clean up after themselves.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select
from sqlalchemy.orm import sessionmaker

from payment_links.endpoints import payment_provider
from payment_links.providers.base import CheckoutRequest, CheckoutSession
from payment_links.providers.sandbox import SandboxProvider
from payment_links.service import create_link
from relance.db import session as db_session
from relance.db.models import AuditEvent, Payment, WebhookEvent
from tests.factories import make_debtor, make_invoice
from tests.support.purge import purge_debtors
from tests.support.sandbox_checkout import completion


class SlowSandbox(SandboxProvider):
    """Sandbox provider whose checkout creation takes a while and is counted."""

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.created = 0

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        self.created += 1
        time.sleep(0.4)
        return super().create_checkout(request)


@pytest.fixture
def committed(engine, settings, monkeypatch, gateway) -> Iterator[tuple]:
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    monkeypatch.setattr(db_session, "get_sessionmaker", lambda: factory)
    with factory() as session:
        debtor = make_debtor(session, channels=("sms",))
        make_invoice(session, debtor, 2500, due=date(2026, 3, 1))
        _, url = create_link(session, debtor=debtor, purpose="balance")
        session.commit()
    started = time.time()
    yield factory, debtor.id, url.removeprefix("http://testserver")
    with factory() as session:
        session.execute(
            delete(WebhookEvent).where(
                WebhookEvent.event_id.like("evt_sandbox_%"),
                WebhookEvent.received_at >= datetime.fromtimestamp(started - 1, UTC),
            )
        )
        purge_debtors(session, [debtor.id])


def _race(calls) -> list:
    results: list = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i, call):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_double_click_opens_one_checkout(committed, settings):
    from relance.app import create_app

    _factory, _debtor_id, path = committed
    provider = SlowSandbox(settings)
    app = create_app(settings)
    app.dependency_overrides[payment_provider] = lambda: provider
    with TestClient(app) as client:
        first, second = _race([lambda: client.post(path, follow_redirects=False)] * 2)

    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert provider.created == 1


def test_double_click_on_pay_records_one_payment(committed, settings):
    from relance.app import create_app

    factory, debtor_id, path = committed
    app = create_app(settings)
    with TestClient(app) as client:
        checkout = client.post(path, follow_redirects=False).headers["location"]
        complete, returns = completion(checkout)
        form = {**returns, "outcome": "success"}
        responses = _race([lambda: client.post(complete, data=form)] * 2)

    assert all(r.status_code == 200 for r in responses)
    with factory() as session:
        assert (
            session.scalar(select(func.count(Payment.id)).where(Payment.debtor_id == debtor_id))
            == 1
        )
        assert (
            session.scalar(
                select(func.count(AuditEvent.id)).where(
                    AuditEvent.debtor_id == debtor_id, AuditEvent.action == "payment.recorded"
                )
            )
            == 1
        )
