"""Mise en demeure: amounts (L441-10 interest, EUR 40 per invoice for B2B only) and the PDF's
content, read back with pypdf, in French and in English."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from pypdf import PdfReader
from sqlalchemy.orm import Session

from relance.db.base import utcnow
from relance.db.models import AuditEvent, Letter
from relance.errors import Conflict
from relance.letters.amounts import interest_minor
from relance.letters.render import qr_svg
from relance.letters.service import create_formal_notice, mark_posted
from relance.policy.service import seed_policy
from tests.factories import make_debtor, make_invoice

TODAY = "2026-11-23 09:00:00"
URL = "https://pay.example.test/pay/tok_abc123"


def _text(path: str) -> str:
    reader = PdfReader(path)
    text = " ".join((page.extract_text() or "") for page in reader.pages)
    return " ".join(text.split())  # pypdf keeps line breaks and no-break spaces: normalise


def test_interest_is_simple_on_365_days_rounded_half_up() -> None:
    # 1 250,00 € × 12.15 % × 84 / 365 = 34,952... € → 3 495 cents
    assert interest_minor(125000, 12.15, 84) == 3495
    assert interest_minor(125000, 12.15, 0) == 0
    assert interest_minor(0, 12.15, 30) == 0


@freeze_time(TODAY)
def test_b2b_letter_in_french_has_the_legal_content(db: Session, tmp_path: Path) -> None:
    debtor = make_debtor(
        db,
        segment="b2b",
        company="Atelier Martin SARL",
        name="Jeanne Martin",
        address_line="8 avenue des Tilleuls",
        postcode="69003",
        city="Lyon",
        channels=("sms", "whatsapp"),
    )
    today = utcnow().date()
    first = make_invoice(
        db,
        debtor,
        due=today - timedelta(days=84),
        amount_minor=125000,
        issued=date(2026, 8, 1),
        number="F-2026-0113",
    )
    second = make_invoice(
        db,
        debtor,
        due=today - timedelta(days=44),
        amount_minor=48050,
        paid_minor=10000,
        issued=date(2026, 9, 10),
        number="F-2026-0158",
    )
    letter = create_formal_notice(
        db, debtor, [first.id, second.id], payment_url=URL, out_dir=tmp_path
    )
    # principal 1 250,00 + 380,50; interest 34,95 + 5,57; indemnity 2 × 40 €
    assert (letter.principal_minor, letter.interest_minor, letter.indemnity_minor) == (
        163050,
        3495 + 557,
        8000,
    )
    assert letter.status == "queued" and letter.tracking_number is None
    assert letter.deadline == today + timedelta(days=8)
    text = _text(letter.pdf_path or "")
    for expected in (
        "Relance Demo SAS",
        "12 rue de la Paix",
        "SIREN",  # creditor identity
        "Atelier Martin SARL",
        "Jeanne Martin",
        "8 avenue des Tilleuls",
        "69003 Lyon",  # debtor
        "F-2026-0113",
        "01/08/2026",
        "31/08/2026",
        "F-2026-0158",  # origin of the debt
        "1 250,00 €",
        "380,50 €",  # principal
        "L441-10",
        "12,15 %",
        "34,95 €",  # late-payment interest
        "40,00 €",
        "D441-5",  # fixed indemnity per invoice
        "1 751,02 €",  # total
        "8 jours",
        "1 décembre 2026",  # deadline
        "pay.example.test/pay/tok_abc123",  # how to pay
        "juridiction compétente",
        "injonction de payer",  # consequence
        "Lettre recommandée avec accusé de réception".upper(),
        "Mise en demeure",
    ):
        assert expected in text, expected


@freeze_time(TODAY)
def test_consumer_letter_has_no_b2b_interest_nor_indemnity(db: Session, tmp_path: Path) -> None:
    debtor = make_debtor(db, segment="consumer", channels=("sms", "whatsapp"))
    invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=40), amount_minor=9900)
    letter = create_formal_notice(db, debtor, [invoice.id], payment_url=URL, out_dir=tmp_path)
    assert (letter.interest_minor, letter.indemnity_minor) == (0, 0)
    text = _text(letter.pdf_path or "")
    assert "99,00 €" in text and "L441-10" not in text and "Indemnité" not in text
    assert "mettons en demeure" in text


@freeze_time(TODAY)
def test_english_variant(db: Session, tmp_path: Path) -> None:
    debtor = make_debtor(
        db, segment="b2b", company="Martin Ltd", language="en", channels=("sms", "whatsapp")
    )
    invoice = make_invoice(
        db, debtor, due=utcnow().date() - timedelta(days=31), amount_minor=100000, number="INV-77"
    )
    letter = create_formal_notice(db, debtor, [invoice.id], payment_url=URL, out_dir=tmp_path)
    assert letter.language == "en"
    text = _text(letter.pdf_path or "")
    for expected in (
        "Formal notice",
        "INV-77",
        "€1,000.00",
        "12.15%",
        "€40.00",
        "1 December 2026",
        "competent court",
        "Yours faithfully",
    ):
        assert expected in text, expected


@freeze_time(TODAY)
def test_deadline_and_rate_follow_the_policy(db: Session, tmp_path: Path) -> None:
    policy = seed_policy().model_copy(deep=True)
    rules = policy.letters.model_copy(update={"deadline_days": 15, "ecb_rate_pct": 3.0})
    policy = policy.model_copy(update={"letters": rules})
    debtor = make_debtor(db, segment="b2b", channels=("sms", "whatsapp"))
    invoice = make_invoice(
        db, debtor, due=utcnow().date() - timedelta(days=365), amount_minor=100000
    )
    letter = create_formal_notice(db, debtor, [invoice.id], policy=policy, out_dir=tmp_path)
    assert letter.deadline == utcnow().date() + timedelta(days=15)
    assert letter.interest_minor == 13000  # 13 % over a full year
    text = _text(letter.pdf_path or "")
    assert "13 %" in text and "15 jours" in text
    assert "pay.example" not in text  # no payments port wired: no link, phone number instead
    assert "+33 1 84 00 00 00" in text


@freeze_time(TODAY)
def test_payment_link_comes_from_the_payments_port(
    db: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from relance.ledger import ports

    class Port:
        def create_link(
            self,
            session,
            *,
            debtor,
            purpose,
            amount_minor=None,  # type: ignore[no-untyped-def]
            invoice_ids=None,
            installment=None,
        ):
            self.called = (debtor.id, purpose, invoice_ids)
            return None, "https://links.test/pay/XYZ"

    port = Port()
    monkeypatch.setattr(ports, "_payments", port)
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=40))
    letter = create_formal_notice(db, debtor, [invoice.id], out_dir=tmp_path)
    assert port.called == (debtor.id, "balance", [invoice.id])
    assert "links.test/pay/XYZ" in _text(letter.pdf_path or "")


@freeze_time(TODAY)
def test_posting_records_the_tracking_number(db: Session, tmp_path: Path) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=40))
    letter = create_formal_notice(db, debtor, [invoice.id], payment_url=URL, out_dir=tmp_path)
    mark_posted(db, letter, "1A12345678901", actor="user:admin@example.com")
    assert (letter.status, letter.tracking_number) == ("sent", "1A12345678901")
    actions = [e.action for e in db.query(AuditEvent).filter_by(debtor_id=debtor.id)]
    # The letter prints the debtor's portal link, issued (and audited) for it.
    assert actions == ["portal.link_issued", "letter.queued", "letter.posted"]


def test_qr_code_is_inline_svg() -> None:
    svg = str(qr_svg(URL))
    assert svg.startswith("<svg") and "<path" in svg


def test_no_open_invoice_is_refused(db: Session, tmp_path: Path) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    with pytest.raises(Conflict, match="no open invoice") as refused:
        create_formal_notice(db, debtor, None, payment_url=URL, out_dir=tmp_path)
    assert refused.value.code == "no_open_invoice"


@pytest.mark.parametrize("language", ["fr", "en"])
def test_letter_carries_the_debtors_portal_link_the_e_mails_reuse(
    db: Session, tmp_path: Path, language: str
) -> None:
    from relance.portal.access import find_access, message_link

    debtor = make_debtor(db, language=language, channels=("sms",))
    invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=31))
    letter = create_formal_notice(db, debtor, [invoice.id], payment_url=URL, out_dir=tmp_path)
    url = message_link(db, debtor)  # what the next reminder e-mail prints: the same link
    access = find_access(db, url.rsplit("/", 1)[-1])
    assert access is not None and access.debtor_id == debtor.id
    text = _text(letter.pdf_path or "")
    assert url in "".join(text.split())  # the printed URL may wrap
    assert debtor.customer_number in text  # the short way in: /portal + customer number


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_letter_carries_a_qr_code_to_the_portal_beside_the_payment_one(
    db: Session, language: str
) -> None:
    """Issue 20: the portal is reached from any message, "letter QR code" included; the letter
    printed the portal's address only, which nobody types from paper."""
    from relance.letters.service import draft
    from relance.policy.service import active_policy
    from relance.portal.access import message_link

    debtor = make_debtor(db, language=language, channels=("sms",))
    invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=31))
    portal = message_link(db, debtor)
    result = draft(
        db,
        debtor,
        [invoice],
        as_of=utcnow().date(),
        policy=active_policy(db),
        payment_url=URL,
        portal_url=portal,
    )
    assert str(qr_svg(portal)) in result.html and str(qr_svg(URL)) in result.html
    without = draft(
        db, debtor, [invoice], as_of=utcnow().date(), policy=active_policy(db), payment_url=URL
    )
    assert str(qr_svg(URL)) in without.html and without.html.count("<svg") == 1


@freeze_time(TODAY)
def test_an_invoice_not_yet_due_is_never_claimed(db: Session, tmp_path: Path) -> None:
    """Seen reading the CLI's letter: a mise en demeure listed an invoice due in ten days among
    the sums 'arrivées à échéance' and added it to the total claimed. Only invoices past their
    due date are claimed, whoever asks (here without invoice ids, as the CLI and a collector do)."""
    debtor = make_debtor(db, segment="b2b", channels=("sms", "whatsapp"))
    late = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=20), amount_minor=10_000)
    make_invoice(db, debtor, due=utcnow().date() + timedelta(days=10), amount_minor=55_500)
    make_invoice(db, debtor, due=utcnow().date(), amount_minor=77_700)  # due today: not yet late
    letter = create_formal_notice(db, debtor, None, payment_url=URL, out_dir=tmp_path)
    assert letter.invoice_ids == [late.id] and letter.principal_minor == 10_000
    text = _text(letter.pdf_path or "")
    assert "100,00 €" in text and "555,00" not in text and "777,00" not in text


@freeze_time(TODAY)
def test_a_letter_for_an_invoice_still_to_fall_due_is_refused(db: Session, tmp_path: Path) -> None:
    debtor = make_debtor(db, channels=("sms", "whatsapp"))
    early = make_invoice(db, debtor, due=utcnow().date() + timedelta(days=3), amount_minor=9_900)
    with pytest.raises(Conflict, match="past its due date") as refused:
        create_formal_notice(db, debtor, [early.id], payment_url=URL, out_dir=tmp_path)
    assert refused.value.code == "no_open_invoice"
    assert db.query(Letter).count() == 0


@freeze_time(TODAY)
def test_late_instalments_of_one_invoice_owe_one_indemnity_and_the_later_ones_none(
    db: Session, tmp_path: Path
) -> None:
    """An e-invoice payable in three instalments (one row each): the two late ones are claimed
    with their interest and one EUR 40 indemnity for the invoice (D441-5), the third, still to
    come, is not claimed at all."""
    debtor = make_debtor(db, segment="b2b", channels=("sms", "whatsapp"))
    today = utcnow().date()
    parts = [
        make_invoice(
            db,
            debtor,
            10_000,
            due=today + timedelta(days=offset),
            number=f"F-42 ({k}/3)",
            instalment_of="F-42",
            instalment_no=k,
        )
        for k, offset in ((1, -60), (2, -30), (3, 30))
    ]
    letter = create_formal_notice(db, debtor, None, payment_url=URL, out_dir=tmp_path)
    assert letter.invoice_ids == [parts[0].id, parts[1].id]
    assert (letter.principal_minor, letter.indemnity_minor) == (20_000, 4_000)
