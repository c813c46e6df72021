"""The portal's core: link discipline, the identity check, and actions with the assistant's effect."""

from __future__ import annotations

import hashlib
from datetime import date, time, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.compliance.service import check_contact
from relance.db.base import utcnow
from relance.db.models import AuditEvent, DunningAction
from relance.dunning.planner import plan
from relance.errors import BadInput, PolicyViolation
from relance.policy.service import seed_policy
from relance.portal import access as portal_access
from relance.portal import service
from relance.portal.models import PortalAccess
from relance.settings import get_settings
from tests.factories import make_debtor, make_invoice
from tests.relance.dunning.helpers import utc

NOW = "2026-11-23 08:00:00"  # Monday, 09:00 in Paris
CLIENT = "192.0.2.10"  # the visitor's address, as the edge finds it


def _debtor_with_debt(db: Session, **kwargs):  # type: ignore[no-untyped-def]
    debtor = make_debtor(db, channels=("sms", "whatsapp"), **kwargs)
    invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=3), amount_minor=60000)
    return debtor, invoice


def test_link_token_is_hashed_at_rest_and_bound_to_one_debtor(db: Session) -> None:
    debtor, _ = _debtor_with_debt(db)
    access, url = portal_access.issue_access(db, debtor)
    token = url.rsplit("/", 1)[-1]
    assert len(token) >= 43  # 256 bits, URL-safe
    assert access.token_hash == hashlib.sha256(token.encode()).hexdigest()
    stored = [row.token_hash for row in db.scalars(select(PortalAccess))]
    assert token not in stored
    assert portal_access.find_access(db, token) is access
    assert portal_access.find_access(db, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    days = (access.expires_at - utcnow()).days
    assert days == get_settings().portal_link_ttl_days - 1


def test_revocation_ends_the_link_and_its_sessions(db: Session) -> None:
    debtor, _ = _debtor_with_debt(db)
    access, _ = portal_access.issue_access(db, debtor)
    epoch = access.session_epoch
    assert portal_access.revoke(db, access, actor="user:x") is True
    assert portal_access.access_state(access) == portal_access.AccessState.REVOKED
    assert access.session_epoch == epoch + 1
    assert portal_access.revoke(db, access, actor="user:x") is False


def test_identity_uses_the_assistant_check_and_locks(db: Session) -> None:
    debtor, _ = _debtor_with_debt(db)  # postcode 69003
    access, _ = portal_access.issue_access(db, debtor)
    why = portal_access.check_identity(db, access, "pourquoi ?", language="fr", client=CLIENT)
    assert why.no_answer and access.failed_attempts == 0  # no candidate: costs nothing
    assert portal_access.check_identity(db, access, "69 003", language="fr", client=CLIENT).verified

    other, _ = _debtor_with_debt(db)
    locked_access, _ = portal_access.issue_access(db, other)
    limit = get_settings().identity_max_attempts
    outcomes = [
        portal_access.check_identity(db, locked_access, f"7500{i}", language="fr", client=CLIENT)
        for i in range(limit)
    ]
    assert outcomes[-1].locked and locked_access.locked_until is not None
    after = portal_access.check_identity(db, locked_access, "69003", language="fr", client=CLIENT)
    assert not after.verified and after.locked
    failures = db.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "portal.identity_failed", AuditEvent.debtor_id == other.id
        )
    ).all()
    assert len(failures) == limit


def test_sign_in_gives_nothing_away(db: Session) -> None:
    debtor, _ = _debtor_with_debt(db)
    assert portal_access.sign_in(db, "T-nope-1", "69003", language="fr", client=CLIENT) is None
    assert (
        portal_access.sign_in(db, debtor.customer_number, "12345", language="fr", client=CLIENT)
        is None
    )
    found = portal_access.sign_in(db, debtor.customer_number, "69003", language="fr", client=CLIENT)
    assert found is not None and found[0].debtor_id == debtor.id


@freeze_time(NOW)
def test_outside_limits_is_never_created_directly(db: Session) -> None:
    debtor, _ = _debtor_with_debt(db)
    with pytest.raises(PolicyViolation):
        service.accept_plan(db, debtor, installments=48, frequency="weekly", today=date.today())
    pending = service.ask_plan_approval(
        db, debtor, installments=48, frequency="weekly", today=date.today()
    )
    assert pending.status == "pending_approval"


@freeze_time(NOW)
@pytest.mark.parametrize("action", ["plan", "promise", "dispute"])
def test_portal_actions_pause_dunning_like_the_assistant(db: Session, action: str) -> None:
    debtor, invoice = _debtor_with_debt(db)
    today = date(2026, 11, 23)
    if action == "plan":
        option = service.plan_options(db, debtor, today)[0]
        service.accept_plan(
            db, debtor, installments=option.installments, frequency=option.frequency, today=today
        )
    elif action == "promise":
        service.promise(
            db, debtor, promised_date=today + timedelta(days=7), amount_minor=None, today=today
        )
    else:
        service.open_dispute(db, debtor, invoice_id=invoice.id, reason="not_received", details="")
    report = plan(db, debtor_ids=[debtor.id])
    expected = {"plan": "skip:on_plan", "promise": "skip:promised", "dispute": "skip:disputed"}
    assert report.counts[expected[action]] == 1
    assert db.scalars(select(DunningAction).where(DunningAction.debtor_id == debtor.id)).all() == []


def test_promise_window_is_the_assistant_one(db: Session) -> None:
    debtor, _ = _debtor_with_debt(db)
    today = date.today()
    with pytest.raises(PolicyViolation):
        service.promise(
            db, debtor, promised_date=today - timedelta(days=1), amount_minor=None, today=today
        )
    with pytest.raises(PolicyViolation):
        service.promise(
            db, debtor, promised_date=today + timedelta(days=31), amount_minor=None, today=today
        )
    with pytest.raises(BadInput):
        service.promise(db, debtor, promised_date=today, amount_minor=10**9, today=today)


@freeze_time(NOW)
def test_planner_tries_the_preferred_channel_first(db: Session) -> None:
    debtor, _ = _debtor_with_debt(db)  # stage friendly: sms then whatsapp
    service.set_preferences(
        db, debtor, channel="whatsapp", language="fr", contact_from=None, contact_until=None
    )
    plan(db, debtor_ids=[debtor.id])
    [action] = db.scalars(select(DunningAction).where(DunningAction.debtor_id == debtor.id))
    assert action.channels == ["whatsapp", "sms"]


def test_contact_hours_narrow_the_legal_window(db: Session) -> None:
    debtor, _ = _debtor_with_debt(db)
    service.set_preferences(
        db,
        debtor,
        channel=None,
        language="fr",
        contact_from=time(17, 0),
        contact_until=time(22, 0),
    )
    policy = seed_policy()
    sms = next(c for c in debtor.contacts if c.channel == "sms")
    with freeze_time("2026-11-23 10:30:00"):  # 11:30 in Paris: legal, but not the debtor's hours
        decision = check_contact(
            db, debtor=debtor, contact=sms, channel="sms", now=utcnow(), policy=policy
        )
    assert decision.codes == ["outside_hours"]
    assert decision.retry_at == utc(2026, 11, 23, 16, 0)  # 17:00 Paris
    with freeze_time("2026-11-23 19:30:00"):  # 20:30 Paris: the debtor's hours, not the law's
        late = check_contact(
            db, debtor=debtor, contact=sms, channel="sms", now=utcnow(), policy=policy
        )
    assert late.codes == ["outside_hours"]
    assert late.retry_at == utc(2026, 11, 24, 16, 0)


@pytest.mark.parametrize(
    ("start", "end", "code"),
    [
        (time(21, 0), time(23, 0), "hours_outside_legal_windows"),
        (time(18, 0), time(9, 0), "bad_hours"),
    ],
)
def test_hours_outside_the_law_are_refused(db: Session, start: time, end: time, code: str) -> None:
    debtor, _ = _debtor_with_debt(db)
    with pytest.raises(BadInput) as caught:
        service.set_preferences(
            db, debtor, channel=None, language="fr", contact_from=start, contact_until=end
        )
    assert caught.value.code == code
    assert debtor.contact_from is None


def test_attachment_checks_run_before_anything_is_stored(db: Session) -> None:
    uploads = [service.Upload("a.pdf", "application/pdf", b"%PDF-1.4")] * 4
    with pytest.raises(BadInput) as caught:
        service.check_uploads(uploads)
    assert caught.value.code == "too_many_attachments"
    with pytest.raises(BadInput):
        service.check_uploads([service.Upload("x.png", "image/png", b"GIF89a")])
    ok = service.check_uploads([service.Upload("x.png", "image/png", b"\x89PNG\r\n\x1a\nrest")])
    assert ok[0][1] == "image/png"


def test_self_service_rate_counts_resolutions_without_a_collector_message(db: Session) -> None:
    from relance.conversations.repository import conversation_for_debtor
    from relance.dashboard.metrics import self_service
    from relance.db.models import Message

    since = utcnow() - timedelta(days=1)
    before = self_service(db, since=since)
    alone, _ = _debtor_with_debt(db)
    helped, _ = _debtor_with_debt(db)
    conversation = conversation_for_debtor(db, helped)
    db.add(
        Message(
            conversation_id=conversation.id,
            direction="outbound",
            channel="sms",
            author="collector",
            body="Bonjour",
            status="sent",
            created_at=utcnow() - timedelta(hours=1),
        )
    )
    db.flush()
    today = date.today()
    for debtor in (alone, helped):
        service.promise(
            db, debtor, promised_date=today + timedelta(days=3), amount_minor=None, today=today
        )
    db.flush()
    resolutions, served = self_service(db, since=since)
    assert (resolutions - before[0], served - before[1]) == (2, 1)


@freeze_time(NOW)
def test_the_overview_counts_the_due_instalments_not_those_still_to_come(db: Session) -> None:
    """An e-invoice payable in instalments (one row each): the portal's balance, its lines and
    what can be paid are the due instalment, not the whole invoice."""
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    today = utcnow().date()
    parts = [
        make_invoice(
            db,
            debtor,
            10_000,
            due=today + timedelta(days=offset),
            number=f"F-42 ({k}/2)",
            instalment_of="F-42",
            instalment_no=k,
        )
        for k, offset in ((1, -3), (2, 27))
    ]
    overview = service.overview(db, debtor, today)
    assert (overview.balance_minor, overview.payable_ids) == (10_000, [parts[0].id])
    assert [line.invoice.id for line in overview.lines] == [parts[0].id]
    with pytest.raises(BadInput) as refused:
        service.start_payment(db, debtor, [parts[1].id])
    assert refused.value.code == "invoice_not_payable"
