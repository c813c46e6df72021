"""Where the debtor plausibly is: every zone the record points to (recorded zone, address, phone
area code) must be inside the contact hours, and the address picks the holiday calendar
(Alsace-Moselle: Good Friday and 26 December)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.compliance.location import locate
from relance.compliance.service import check_contact
from relance.db import session as db_session
from relance.db.base import utcnow
from relance.db.models import Debtor, DunningAction
from relance.db.models.enums import ContactStatus
from relance.dunning.dispatcher import Dispatcher
from relance.dunning.planner import plan
from relance.policy.service import seed_policy
from tests.factories import make_debtor, make_invoice
from tests.relance.dunning.helpers import FakeAssistant, FakeGateway, utc

POLICY = seed_policy()
MONDAY_0830_NEW_YORK = "2026-11-23 13:30:00"  # 05:30 in California


def _check(db: Session, debtor: Debtor, channel: str = "voice"):  # type: ignore[no-untyped-def]
    contact = next((c for c in debtor.contacts if c.channel == channel), None)
    return check_contact(
        db, debtor=debtor, contact=contact, channel=channel, now=utcnow(), policy=POLICY
    )


def _us(
    db: Session,
    *,
    phone: str,
    postcode: str = "10001",
    tz: str = "America/New_York",
    channels: tuple[str, ...] = ("sms", "voice"),
) -> Debtor:
    return make_debtor(
        db,
        jurisdiction="US",
        timezone=tz,
        phone=phone,
        postcode=postcode,
        city="",
        country="US",
        channels=channels,
        language="en",
    )


@freeze_time(MONDAY_0830_NEW_YORK)
def test_new_york_debtor_with_a_415_phone_is_not_called_at_0530_california(db: Session) -> None:
    debtor = _us(db, phone="+14155550101")
    decision = _check(db, debtor)
    assert decision.codes == ["outside_hours"]
    why = decision.explain()
    assert "05:30 in America/Los_Angeles (phone +1 415)" in why
    assert "America/New_York (recorded time zone, address 10001)" in why
    assert decision.retry_at == utc(2026, 11, 23, 16, 0)  # 08:00 in California
    with freeze_time("2026-11-23 16:00:00"):
        assert _check(db, debtor).allowed
    with freeze_time("2026-11-24 02:00:00"):  # 21:00 in New York, 18:00 in California
        assert _check(db, debtor).codes == ["outside_hours"]


@freeze_time(MONDAY_0830_NEW_YORK)
def test_new_york_debtor_with_a_new_york_phone_and_address_is_called(db: Session) -> None:
    assert _check(db, _us(db, phone="+12125550102")).allowed


@freeze_time(MONDAY_0830_NEW_YORK)
def test_a_california_address_blocks_like_a_california_phone(db: Session) -> None:
    decision = _check(db, _us(db, phone="+12125550103", postcode="94103"))
    assert decision.codes == ["outside_hours"]
    assert "America/Los_Angeles (address 94103)" in decision.explain()


@freeze_time("2026-11-23 14:30:00")  # 08:30 in Chicago, 07:30 in El Paso
def test_a_state_spanning_two_zones_makes_both_plausible(db: Session) -> None:
    debtor = _us(db, phone="+18005550104", postcode="75201", tz="America/Chicago")  # Dallas
    place = locate(debtor)
    assert {name for name, _ in place.zones} == {"America/Chicago", "America/Denver"}
    assert place.region == "US state TX"
    assert _check(db, debtor).codes == ["outside_hours"]


@freeze_time(MONDAY_0830_NEW_YORK)
def test_toll_free_and_someone_elses_numbers_locate_nothing(db: Session) -> None:
    debtor = _us(db, phone="+18005550105", channels=("sms",))
    assert [name for name, _ in locate(debtor).zones] == ["America/New_York"]
    other = _us(db, phone="+14155550106", channels=("sms",))
    other.contacts[0].status = ContactStatus.WRONG_PERSON
    assert [name for name, _ in locate(other).zones] == ["America/New_York"]


@freeze_time("2026-11-23 10:30:00")
def test_zones_sharing_no_window_block_until_a_collector_corrects_the_record(
    db: Session,
) -> None:
    debtor = make_debtor(db, phone="+18085550107", channels=("sms",))  # Paris and Honolulu
    decision = _check(db, debtor, "sms")
    assert decision.codes == ["no_common_window"] and decision.retry_at is None
    assert "Pacific/Honolulu" in decision.explain()


@freeze_time(MONDAY_0830_NEW_YORK)
def test_dispatcher_defers_the_reminder_and_stores_the_zone_conflict(db: Session) -> None:
    debtor = _us(db, phone="+14155550108", channels=("sms",))  # this stage texts
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=10))
    plan(db, debtor_ids=[debtor.id])
    gateway = FakeGateway()
    dispatcher = Dispatcher(
        db_session.get_sessionmaker(), gateway=gateway, assistant=FakeAssistant(), worker_id="test"
    )
    assert dispatcher.run() == {"deferred": 1} and gateway.sent == []
    db.expire_all()
    [action] = db.scalars(select(DunningAction).where(DunningAction.debtor_id == debtor.id))
    assert action.outcome == "deferred:outside_hours"
    assert "05:30 in America/Los_Angeles (phone +1 415)" in (action.detail or "")
    assert action.next_attempt_at == utc(2026, 11, 23, 16, 0)


def test_zone_intersection_follows_daylight_saving_changes(db: Session) -> None:
    """8 March 2026: New York moves to EDT. 08:00 EDT is 12:00 UTC, the same instant is 05:00 in
    California (PDT starts the same night), so the 415 phone keeps the window shut until 15:00."""
    debtor = _us(db, phone="+14155550109")
    with freeze_time("2026-03-08 12:30:00"):
        decision = _check(db, debtor)
        assert decision.codes == ["outside_hours"]
        assert decision.retry_at == utc(2026, 3, 8, 15, 0)  # 08:00 PDT
    with freeze_time("2026-03-09 00:59:00"):  # 20:59 EDT, 17:59 PDT
        assert _check(db, debtor).allowed
    with freeze_time("2026-03-09 01:00:00"):  # 21:00 EDT
        assert _check(db, debtor).codes == ["outside_hours"]


# -- regional holidays -------------------------------------------------------------------------

ALSACE_MOSELLE = [("57000", "Metz"), ("67000", "Strasbourg"), ("68100", "Mulhouse")]
HOLIDAYS = [
    ("2026-04-03 10:00:00", "Good Friday"),  # Friday 12:00 in Paris
    ("2025-12-26 10:00:00", "Saint Stephen's Day"),  # Friday 11:00 in Paris
]


@pytest.mark.parametrize(("postcode", "city"), ALSACE_MOSELLE)
@pytest.mark.parametrize(("instant", "name"), HOLIDAYS)
def test_alsace_moselle_is_not_contacted_on_its_own_holidays(
    db: Session, postcode: str, city: str, instant: str, name: str
) -> None:
    with freeze_time(instant):
        decision = _check(
            db, make_debtor(db, postcode=postcode, city=city, channels=("sms", "whatsapp")), "sms"
        )
    assert decision.codes == ["public_holiday"]
    assert name in decision.explain() and f"Alsace-Moselle ({postcode[:2]})" in decision.explain()


@pytest.mark.parametrize(("instant", "name"), HOLIDAYS)
def test_paris_is_still_contacted_on_those_days(db: Session, instant: str, name: str) -> None:
    with freeze_time(instant):
        assert _check(
            db, make_debtor(db, postcode="75011", city="Paris", channels=("sms", "whatsapp")), "sms"
        ).allowed


@freeze_time("2026-04-03 10:00:00")
def test_dispatcher_defers_strasbourg_to_monday_and_sends_to_paris(db: Session) -> None:
    strasbourg = make_debtor(db, postcode="67000", city="Strasbourg", channels=("sms",))
    paris = make_debtor(db, postcode="75011", city="Paris", channels=("sms",))
    for debtor in (strasbourg, paris):
        make_invoice(db, debtor, due=utcnow().date() - timedelta(days=10))
    plan(db, debtor_ids=[strasbourg.id, paris.id])
    gateway = FakeGateway()
    dispatcher = Dispatcher(
        db_session.get_sessionmaker(), gateway=gateway, assistant=FakeAssistant(), worker_id="test"
    )
    assert dispatcher.run() == {"sent": 1, "deferred": 1}
    assert [s["debtor_id"] for s in gateway.sent] == [paris.id]
    db.expire_all()
    [held] = db.scalars(select(DunningAction).where(DunningAction.debtor_id == strasbourg.id))
    assert held.outcome == "deferred:public_holiday" and "Good Friday" in (held.detail or "")
    assert held.next_attempt_at == utc(2026, 4, 7, 8, 0)  # Tuesday 10:00 (Monday: Easter Monday)


@pytest.mark.parametrize("utc_hour", [0, 3, 6, 21, 23])
def test_a_debtor_located_only_where_it_is_noon_is_reachable_at_any_utc_hour(
    db: Session, utc_hour: int
) -> None:
    """The premise of the two-worker e2e test (tests/e2e/test_multi_process.py): with no address
    and a toll-free number, the recorded zone is the only one, so Paris's night does not hold
    the reminder back (it did with make_debtor's Lyon address and +33 number)."""
    with freeze_time(f"2026-12-04 {utc_hour:02d}:10:00"):
        zone = f"Etc/GMT{utc_hour - 12:+d}"  # noon there now (POSIX sign: Etc/GMT-2 is UTC+2)
        debtor = make_debtor(
            db, jurisdiction="US", timezone=zone, channels=("sms",), language="en",
            address_line=None, postcode=None, city=None, country="US", phone=f"+1800555{utc_hour:04d}",
        )  # fmt: skip
        assert [name for name, _ in locate(debtor).zones] == [zone]
        assert _check(db, debtor, "sms").allowed
        defaults = make_debtor(db, jurisdiction="US", timezone=zone, channels=("sms",))
        assert "Europe/Paris" in [name for name, _ in locate(defaults).zones]
        assert _check(db, defaults, "sms").allowed is (7 <= utc_hour < 20)
