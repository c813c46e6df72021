"""The per-address limit the portal and the console share: what one client holds, how its
address is kept, and the sliding window (the forms' own attacks are in
tests/portal/test_client_limit.py and tests/console/test_login_address_limit.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance import address_limit
from relance.address_limit import AddressLimit
from relance.auth import ratelimit
from relance.db.models import AuditEvent
from relance.portal import client_limit
from relance.settings import Settings

NOW = "2026-11-23 08:00:00"
CLIENT = "203.0.113.7"


def _limit(**changes: object) -> AddressLimit:
    values: dict[str, object] = {
        "context": "test-client",
        "entity_type": "test_client",
        "failed": "test.client_failed",
        "throttled": "test.client_throttled",
        "max_failures": 3,
        "window": timedelta(minutes=10),
        "secret_key": "a-secret-key-for-this-test-only-0123456789",
    }
    return AddressLimit(**{**values, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("address", "group"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),  # IPv4-mapped: the IPv4 client
        ("fe80::1%eth0", "fe80::/64"),
        (" testclient ", "testclient"),  # not an address: counted as written
    ],
)
def test_what_one_client_holds(address: str, group: str) -> None:
    assert address_limit.address_group(address) == group


def test_the_address_is_kept_as_a_keyed_hash() -> None:
    limit = _limit()
    key = limit.key("2001:db8:1:2::1")
    assert key == limit.key("2001:db8:1:2::99")
    assert len(key) == 64 and "2001" not in key
    assert _limit(secret_key="another-secret-key").key("2001:db8:1:2::1") != key
    assert "a-secret-key" not in repr(limit)


def test_one_address_has_unrelated_keys_on_the_portal_and_the_console(settings: Settings) -> None:
    """Each form counts its own failures: a typo on the portal costs nothing at the console."""
    portal, console = client_limit.limit(settings), ratelimit.per_address(settings)
    assert portal.key(CLIENT) != console.key(CLIENT)
    assert portal.entity_type != console.entity_type
    assert {portal.failed, portal.throttled}.isdisjoint({console.failed, console.throttled})


def test_the_window_slides_and_a_refusal_is_recorded_but_not_counted(db: Session) -> None:
    limit = _limit()
    with freeze_time(NOW) as clock:
        address_limit.record_failure(db, limit, CLIENT)
        clock.tick(timedelta(minutes=4))
        for _ in range(2):
            address_limit.record_failure(db, limit, CLIENT)
        assert address_limit.refusal(db, limit, "198.51.100.20") == 0  # another client
        assert address_limit.refusal(db, limit, CLIENT, where="here") == 6 * 60
        assert address_limit.refusal(db, limit, CLIENT) == 6 * 60
        clock.tick(timedelta(minutes=6, seconds=1))  # the 08:00 failure aged out
        assert address_limit.refusal(db, limit, CLIENT) == 0
        address_limit.record_failure(db, limit, CLIENT)
        assert address_limit.refusal(db, limit, CLIENT) == 4 * 60 - 1
    events = db.scalars(
        select(AuditEvent).where(AuditEvent.entity_type == "test_client").order_by(AuditEvent.id)
    ).all()
    assert [e.action for e in events] == ["test.client_failed"] * 3 + [
        "test.client_throttled",
        "test.client_throttled",
        "test.client_failed",
        "test.client_throttled",
    ]
    assert events[3].details == {"retry_after_seconds": 360, "where": "here"}
    assert {e.entity_id for e in events} == {limit.key(CLIENT)}
    assert all(CLIENT not in f"{e.entity_id}{e.details}" for e in events)
