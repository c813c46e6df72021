"""Formal-notice stage: one mise en demeure per debtor (and currency) for all the invoices that
reached the stage in the same run, never a second letter for an invoice already claimed, one SMS
notice per letter, and exactly one letter when two dispatchers race.

The PDFs are read back with pypdf to check every invoice is claimed in the one letter.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from pypdf import PdfReader
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from relance.db import session as db_session
from relance.db.base import utcnow
from relance.db.models import DunningAction, DunningRun, Letter
from relance.dunning.dispatcher import Dispatcher
from relance.dunning.planner import plan
from relance.errors import Conflict, PolicyViolation
from relance.letters.service import create_formal_notice
from relance.settings import Settings
from tests.factories import make_debtor, make_invoice
from tests.relance.dunning.helpers import FakeAssistant, FakeGateway, utc
from tests.support.purge import purge_debtors

MONDAY_11 = "2026-11-23 10:00:00"  # 11:00 in Paris
TUESDAY_11 = "2026-11-24 10:00:00"


def _text(path: str | None) -> str:
    reader = PdfReader(path or "")
    text = " ".join((page.extract_text() or "") for page in reader.pages)
    return " ".join(text.split())


def _dispatcher(gateway: FakeGateway, assistant: FakeAssistant) -> Dispatcher:
    return Dispatcher(
        db_session.get_sessionmaker(), gateway=gateway, assistant=assistant, worker_id="test"
    )


def _letters(db: Session, debtor_id: int) -> list[Letter]:
    db.expire_all()
    return list(db.scalars(select(Letter).where(Letter.debtor_id == debtor_id).order_by(Letter.id)))


def _actions(db: Session, debtor_id: int) -> list[DunningAction]:
    db.expire_all()
    return list(
        db.scalars(
            select(DunningAction)
            .where(DunningAction.debtor_id == debtor_id)
            .order_by(DunningAction.id)
        )
    )


@freeze_time(MONDAY_11)
def test_one_letter_claims_every_invoice_of_the_debtor_then_one_sms(db: Session) -> None:
    gateway, assistant = FakeGateway(), FakeAssistant()
    debtor = make_debtor(
        db, segment="b2b", company="Atelier Martin SARL", channels=("sms", "whatsapp")
    )
    today = utcnow().date()
    first = make_invoice(
        db, debtor, due=today - timedelta(days=34), amount_minor=125000, number="F-2026-0201"
    )
    second = make_invoice(
        db, debtor, due=today - timedelta(days=30), amount_minor=48050, number="F-2026-0202"
    )
    other = make_debtor(db, segment="b2b", channels=("sms", "whatsapp"))
    make_invoice(db, other, due=today - timedelta(days=31), number="F-2026-0999")
    plan(db, debtor_ids=[debtor.id, other.id])
    dispatcher = _dispatcher(gateway, assistant)
    assert dispatcher.run() == {"letter": 2}  # one per debtor

    [letter] = _letters(db, debtor.id)
    assert sorted(letter.invoice_ids) == sorted([first.id, second.id])
    # Interest (12.15 %) and the EUR 40 indemnity per invoice, summed.
    assert letter.principal_minor == 125000 + 48050
    assert letter.interest_minor == 1415 + 480  # 34 and 30 days late
    assert letter.indemnity_minor == 2 * 4000
    text = _text(letter.pdf_path)
    for expected in (
        "F-2026-0201",
        "F-2026-0202",
        "1 250,00 €",
        "480,50 €",
        "14,15 €",
        "4,80 €",
        "1 829,45 €",
        "L441-10",
        "D441-5",
    ):
        assert expected in text, expected
    assert "F-2026-0999" not in text and text.count("40,00 €") >= 2
    assert {a.letter_id for a in _actions(db, debtor.id) if a.stage == "formal_notice"} == {
        letter.id
    }

    with freeze_time(TUESDAY_11):  # the notice respects the minimum gap, then goes once
        assert dispatcher.run() == {"sent": 2}
        assert dispatcher.run() == {}
    [sms] = [s for s in gateway.sent if s["debtor_id"] == debtor.id]
    assert "F-2026-0201" in sms["body"] and "F-2026-0202" in sms["body"]
    notices = [a for a in _actions(db, debtor.id) if a.stage == "formal_notice_notice"]
    assert len(notices) == 2 and {a.status for a in notices} == {"sent"}
    assert {a.letter_id for a in notices} == {letter.id}


@freeze_time(MONDAY_11)
def test_invoice_already_in_a_queued_letter_is_not_claimed_twice(db: Session) -> None:
    gateway, assistant = FakeGateway(), FakeAssistant()
    debtor = make_debtor(db, segment="b2b", channels=("sms", "whatsapp"))
    today = utcnow().date()
    early = make_invoice(db, debtor, due=today - timedelta(days=32), number="F-EARLY")
    late = make_invoice(db, debtor, due=today - timedelta(days=30), number="F-LATE")
    by_hand = create_formal_notice(db, debtor, [early.id], payment_url="https://p.test/x")
    plan(db, debtor_ids=[debtor.id])
    assert _dispatcher(gateway, assistant).run() == {"letter": 1}
    first, new = _letters(db, debtor.id)
    assert first.id == by_hand.id and new.invoice_ids == [late.id]
    assert "F-EARLY" not in _text(new.pdf_path) and "F-LATE" in _text(new.pdf_path)
    by_invoice = {a.invoice_id: a for a in _actions(db, debtor.id) if a.stage == "formal_notice"}
    assert (by_invoice[early.id].letter_id, by_invoice[early.id].outcome) == (
        by_hand.id,
        "already_in_letter",
    )
    assert by_invoice[late.id].letter_id == new.id
    notices = [a for a in _actions(db, debtor.id) if a.stage == "formal_notice_notice"]
    assert [a.invoice_id for a in notices] == [late.id]  # the hand-made letter had no notice


@freeze_time(MONDAY_11)
def test_every_invoice_already_claimed_makes_no_letter_and_no_sms(db: Session) -> None:
    debtor = make_debtor(db, segment="b2b", channels=("sms", "whatsapp"))
    invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=30))
    create_formal_notice(db, debtor, [invoice.id], payment_url="https://p.test/x")
    plan(db, debtor_ids=[debtor.id])
    assert _dispatcher(FakeGateway(), FakeAssistant()).run() == {"letter_exists": 1}
    assert len(_letters(db, debtor.id)) == 1
    assert [a.stage for a in _actions(db, debtor.id)] == ["formal_notice"]
    with pytest.raises(Conflict) as claimed:
        create_formal_notice(db, debtor, [invoice.id], payment_url="https://p.test/x")
    assert claimed.value.code == "already_in_letter"
    assert list(claimed.value.details["letters"]) == [invoice.id]
    assert len(_letters(db, debtor.id)) == 1


@freeze_time(MONDAY_11)
def test_a_letter_never_adds_two_currencies(db: Session) -> None:
    debtor = make_debtor(db, segment="b2b", channels=("sms", "whatsapp"))
    today = utcnow().date()
    euro = make_invoice(db, debtor, due=today - timedelta(days=30), amount_minor=10000)
    pound = make_invoice(db, debtor, due=today - timedelta(days=31), amount_minor=20000)
    pound.currency = "GBP"
    db.flush()
    with pytest.raises(PolicyViolation, match="one letter per currency") as mixed:
        create_formal_notice(db, debtor, None, payment_url="https://p.test/x")
    assert mixed.value.code == "mixed_currencies" and _letters(db, debtor.id) == []
    plan(db, debtor_ids=[debtor.id])
    assert _dispatcher(FakeGateway(), FakeAssistant()).run() == {"letter": 1}
    letters = _letters(db, debtor.id)
    assert sorted((x.currency, tuple(x.invoice_ids), x.principal_minor) for x in letters) == [
        ("EUR", (euro.id,), 10000),
        ("GBP", (pound.id,), 20000),
    ]
    groups = {a.group_key for a in _actions(db, debtor.id) if a.stage == "formal_notice_notice"}
    assert len(groups) == 2  # one notice per letter


@pytest.mark.postgres
def test_two_dispatchers_queue_one_letter_per_debtor(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    now = utc(2026, 11, 23, 10, 0)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory() as session:
        debtors = [
            make_debtor(session, segment="b2b", channels=("sms", "whatsapp")) for _ in range(4)
        ]
        for debtor in debtors:
            make_invoice(session, debtor, due=now.date() - timedelta(days=30))
            make_invoice(session, debtor, due=now.date() - timedelta(days=33))
        ids = [d.id for d in debtors]
        report = plan(session, now=now, debtor_ids=ids)
        session.commit()
        keys = sorted({g.group_key for g in report.groups})
        assert len(keys) == len(debtors)
    try:
        barrier = threading.Barrier(2)
        results: dict[str, Counter[str]] = {}
        errors: list[BaseException] = []

        def work(name: str) -> None:
            try:
                dispatcher = Dispatcher(
                    factory, gateway=FakeGateway(), assistant=FakeAssistant(), worker_id=name
                )
                barrier.wait()
                results[name] = Counter(dispatcher.dispatch_group(k, now=now) for k in keys)
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in ("w1", "w2")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        total = results["w1"] + results["w2"]
        assert total == Counter({"letter": len(debtors), "taken": len(debtors)})
        with factory() as session:
            letters = session.scalars(select(Letter).where(Letter.debtor_id.in_(ids))).all()
            assert Counter(x.debtor_id for x in letters) == Counter({i: 1 for i in ids})
            assert all(len(x.invoice_ids) == 2 for x in letters)
            notices = session.scalars(
                select(DunningAction).where(
                    DunningAction.debtor_id.in_(ids), DunningAction.stage == "formal_notice_notice"
                )
            ).all()
            assert len({n.group_key for n in notices}) == len(debtors)
    finally:
        with factory() as session:
            session.execute(delete(DunningRun).where(DunningRun.id == report.run_id))
            purge_debtors(session, ids)
