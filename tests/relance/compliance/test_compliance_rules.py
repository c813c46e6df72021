"""Each compliance rule, with a frozen clock: windows in the debtor's time zone, Sundays, public
holidays, US 7-in-7 and the quiet week after a phone conversation, caps, opt-outs, AI disclosure."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
from freezegun import freeze_time
from sqlalchemy.orm import Session

from relance.compliance.service import check_contact
from relance.compliance.windows import zone
from relance.conversations.repository import conversation_for_debtor
from relance.db.base import utcnow
from relance.db.models import Debtor, DunningAction, Invoice
from relance.db.models.enums import ContactStatus, ConversationMode
from relance.policy.service import seed_policy
from tests.factories import make_debtor, make_invoice, make_message
from tests.relance.dunning.helpers import utc

POLICY = seed_policy()


def _check(db: Session, debtor: Debtor, channel: str = "sms"):  # type: ignore[no-untyped-def]
    contact = next((c for c in debtor.contacts if c.channel == channel), None)
    return check_contact(
        db, debtor=debtor, contact=contact, channel=channel, now=utcnow(), policy=POLICY
    )


@freeze_time("2026-11-23 10:30:00")  # Monday 11:30 in Paris
def test_fr_weekday_inside_window_is_allowed_with_ai_disclosure(db: Session) -> None:
    decision = _check(db, make_debtor(db, channels=("sms", "whatsapp")))
    assert decision.allowed, decision.explain()
    assert decision.disclose_ai is True  # never contacted before
    assert decision.may_disclose_details is False  # nobody answered from this number yet


@freeze_time("2026-11-22 10:30:00")  # Sunday
def test_fr_sunday_is_blocked_until_monday_ten(db: Session) -> None:
    decision = _check(db, make_debtor(db, channels=("sms", "whatsapp")))
    assert decision.codes == ["sunday"]
    assert decision.retry_at == utc(2026, 11, 23, 9, 0)  # Monday 10:00 Paris = 09:00 UTC
    assert "Sunday" in decision.explain()


@freeze_time("2026-11-11 10:30:00")  # Wednesday 11 November: Armistice
def test_fr_public_holiday_is_blocked(db: Session) -> None:
    decision = _check(db, make_debtor(db, channels=("sms", "whatsapp")))
    assert decision.codes == ["public_holiday"]
    assert "Armistice" in decision.explain()
    assert decision.retry_at == utc(2026, 11, 12, 9, 0)


@freeze_time("2026-11-21 10:30:00")  # Saturday: FR contacts are on weekdays only
def test_fr_saturday_is_not_a_contact_day(db: Session) -> None:
    assert _check(db, make_debtor(db, channels=("sms", "whatsapp"))).codes == ["closed_day"]


@freeze_time("2026-11-23 12:30:00")  # 13:30 Paris: lunch break
def test_fr_lunch_break_is_outside_hours(db: Session) -> None:
    decision = _check(db, make_debtor(db, channels=("sms", "whatsapp")))
    assert decision.codes == ["outside_hours"]
    assert decision.retry_at == utc(2026, 11, 23, 13, 0)  # 14:00 Paris


@freeze_time("2026-11-23 19:30:00")  # 20:30 Paris, closed; same instant is 23:30 in Réunion
def test_fr_evening_is_closed_and_next_window_is_next_morning(db: Session) -> None:
    decision = _check(db, make_debtor(db, channels=("sms", "whatsapp")))
    assert decision.codes == ["outside_hours"]
    assert decision.retry_at == utc(2026, 11, 24, 9, 0)


@freeze_time("2026-11-23 07:30:00")  # 08:30 in Paris (closed) but 11:30 in Réunion (open)
def test_window_uses_the_debtors_time_zone(db: Session) -> None:
    assert not _check(db, make_debtor(db, channels=("sms", "whatsapp"))).allowed
    # Address and phone agree with the recorded zone (a Lyon address would make Paris plausible).
    assert _check(
        db,
        make_debtor(
            db,
            timezone="Indian/Reunion",
            postcode="97400",
            city="Saint-Denis",
            phone="+262692000001",
            channels=("sms", "whatsapp"),
        ),
    ).allowed


@freeze_time("2026-11-23 12:30:00")  # 07:30 in New York: before 08:00
def test_us_window_is_8_to_21_local(db: Session) -> None:
    debtor = make_debtor(
        db, jurisdiction="US", timezone="America/New_York", channels=("sms", "whatsapp")
    )
    decision = _check(db, debtor)
    assert decision.codes == ["outside_hours"]
    assert decision.retry_at == utc(2026, 11, 23, 13, 0)  # 08:00 EST
    with freeze_time("2026-11-22 14:00:00"):  # Sunday 09:00 in New York: allowed in the US
        assert _check(db, debtor).allowed


@freeze_time("2026-11-23 15:00:00")  # 10:00 in New York
def test_us_seven_calls_in_seven_days(db: Session) -> None:
    debtor = make_debtor(
        db, jurisdiction="US", timezone="America/New_York", channels=("sms", "voice")
    )
    now = utcnow()
    for day in range(7):
        make_message(
            db,
            conversation_for_debtor(db, debtor),
            channel="voice",
            direction="outbound",
            created_at=now - timedelta(days=day, hours=1),
        )
    decision = _check(db, debtor, "voice")
    assert decision.codes == ["call_cap"]
    assert "7 call attempts in 7 days" in decision.explain()
    assert decision.retry_at == now - timedelta(days=6, hours=1) + timedelta(days=7)
    assert _check(db, debtor, "sms").allowed  # the cap is on calls only


@freeze_time("2026-11-23 15:00:00")
def test_us_six_calls_leave_room_for_a_seventh(db: Session) -> None:
    debtor = make_debtor(
        db, jurisdiction="US", timezone="America/New_York", channels=("sms", "voice")
    )
    for day in range(6):
        make_message(
            db,
            conversation_for_debtor(db, debtor),
            channel="voice",
            direction="outbound",
            created_at=utcnow() - timedelta(days=day, hours=1),
        )
    make_message(
        db,
        conversation_for_debtor(db, debtor),
        channel="voice",
        direction="outbound",
        created_at=utcnow() - timedelta(days=8),
    )  # outside the 7-day window
    assert _check(db, debtor, "voice").allowed


@freeze_time("2026-11-23 15:00:00")
def test_us_no_call_within_seven_days_after_a_conversation(db: Session) -> None:
    debtor = make_debtor(
        db, jurisdiction="US", timezone="America/New_York", channels=("sms", "voice")
    )
    talk = utcnow() - timedelta(days=3)
    make_message(
        db,
        conversation_for_debtor(db, debtor),
        channel="voice",
        direction="inbound",
        created_at=talk,
    )
    decision = _check(db, debtor, "voice")
    assert decision.codes == ["after_conversation"]
    assert decision.retry_at == talk + timedelta(days=7)


@freeze_time("2026-11-23 15:00:00")
def test_fr_profile_has_no_call_cap(db: Session) -> None:
    debtor = make_debtor(db, channels=("sms", "voice"))
    for day in range(8):
        make_message(
            db,
            conversation_for_debtor(db, debtor),
            channel="voice",
            direction="outbound",
            created_at=utcnow() - timedelta(days=day % 6, hours=1),
        )
    assert _check(db, debtor, "voice").allowed


def _sent(db: Session, debtor: Debtor, invoice: Invoice, at, n: int) -> None:  # type: ignore[no-untyped-def]
    db.add(
        DunningAction(
            idempotency_key=f"{invoice.id}:s{n}",
            invoice_id=invoice.id,
            debtor_id=debtor.id,
            stage=f"s{n}",
            kind="message",
            group_key=f"{debtor.id}:contact:{n}",
            status="sent",
            sent_at=at,
            channels=["sms"],
        )
    )
    db.flush()


@freeze_time("2026-11-23 10:30:00")
def test_frequency_cap_per_debtor(db: Session) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    invoice = make_invoice(db, debtor, due=utcnow().date())
    for n, days in enumerate((6, 4, 2)):
        _sent(db, debtor, invoice, utcnow() - timedelta(days=days), n)
    decision = _check(db, debtor)
    assert decision.codes == ["frequency_cap"]
    assert decision.retry_at == utcnow() - timedelta(days=6) + timedelta(days=7)


@freeze_time("2026-11-23 10:30:00")
def test_minimum_gap_between_two_contacts(db: Session) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    invoice = make_invoice(db, debtor, due=utcnow().date())
    _sent(db, debtor, invoice, utcnow() - timedelta(hours=3), 1)
    decision = _check(db, debtor)
    assert decision.codes == ["min_gap"]
    assert decision.retry_at == utcnow() + timedelta(hours=17)


@freeze_time("2026-11-23 10:30:00")
def test_opt_out_is_per_channel(db: Session) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    sms = next(c for c in debtor.contacts if c.channel == "sms")
    sms.opted_out_at = utcnow() - timedelta(days=1)
    db.flush()
    decision = _check(db, debtor, "sms")
    assert decision.codes == ["opted_out"] and decision.retry_at is None
    assert _check(db, debtor, "whatsapp").allowed


@freeze_time("2026-11-23 10:30:00")
def test_wrong_person_and_missing_contact_are_blocked(db: Session) -> None:
    debtor = make_debtor(db, channels=("sms",))
    debtor.contacts[0].status = ContactStatus.WRONG_PERSON
    db.flush()
    assert _check(db, debtor, "sms").codes == ["wrong_person"]
    assert _check(db, debtor, "whatsapp").codes == ["no_contact"]


@freeze_time("2026-11-23 10:30:00")
def test_handed_off_conversation_is_not_contacted(db: Session) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    conversation_for_debtor(db, debtor).mode = ConversationMode.HUMAN
    db.flush()
    assert _check(db, debtor).codes == ["handed_off"]


@freeze_time("2026-11-23 10:30:00")
def test_ai_disclosure_only_at_first_contact_and_details_after_a_verified_answer(
    db: Session,
) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    sms = next(c for c in debtor.contacts if c.channel == "sms")
    make_message(
        db,
        conversation_for_debtor(db, debtor),
        channel="sms",
        direction="outbound",
        created_at=utcnow() - timedelta(days=3),
    )
    decision = _check(db, debtor)
    assert decision.disclose_ai is False and decision.may_disclose_details is False
    make_message(
        db,
        conversation_for_debtor(db, debtor),
        channel="sms",
        direction="inbound",
        created_at=utcnow() - timedelta(days=2),
        address=sms.address,
    )
    # Someone answered from the number but never passed the identity check: still discreet.
    assert _check(db, debtor).may_disclose_details is False
    conversation_for_debtor(db, debtor).identity_verified_at = utcnow() - timedelta(days=2)
    db.flush()
    assert _check(db, debtor).may_disclose_details is True


@freeze_time("2026-11-23 10:30:00")
def test_verified_elsewhere_does_not_unlock_an_unanswered_contact_point(db: Session) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    sms = next(c for c in debtor.contacts if c.channel == "sms")
    make_message(
        db,
        conversation_for_debtor(db, debtor),
        channel="sms",
        direction="inbound",
        created_at=utcnow() - timedelta(days=2),
        address=sms.address,
    )
    conversation_for_debtor(db, debtor).identity_verified_at = utcnow() - timedelta(days=2)
    db.flush()
    whatsapp = next(c for c in debtor.contacts if c.channel == "whatsapp")
    whatsapp.address = "whatsapp:+33699887766"  # a different number nobody has answered from
    db.flush()
    decision = check_contact(
        db, debtor=debtor, contact=whatsapp, channel="whatsapp", now=utcnow(), policy=POLICY
    )
    assert decision.may_disclose_details is False


@freeze_time("2026-11-22 10:30:00")  # Sunday: windows do not apply to a posted letter
def test_letters_ignore_phone_windows(db: Session) -> None:
    decision = check_contact(
        db,
        debtor=make_debtor(db, channels=("sms", "whatsapp")),
        contact=None,
        channel="letter",
        now=utcnow(),
        policy=POLICY,
    )
    assert decision.allowed


def test_an_unknown_zone_is_an_error_not_a_guess() -> None:
    """Every input checks the zone, so an unknown one is corrupt data: guessing Paris (as this
    did) would put a New York debtor's window six hours early."""
    assert zone(None) == ZoneInfo("Europe/Paris")  # DEFAULT_TIMEZONE for a debtor without one
    with pytest.raises(ZoneInfoNotFoundError):
        zone("Mars/Olympus")
