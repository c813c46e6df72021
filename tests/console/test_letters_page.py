"""Letters to post: the queue of formal notices, PDF download, and marking one posted with its
registered-mail tracking number (HTMX and plain form, CSRF, audit, only queued → posted)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.base import utcnow
from relance.db.models import AuditEvent, Debtor, Letter, User
from tests.console.conftest import csrf_of
from tests.factories import make_debtor, make_invoice

PDF = b"%PDF-1.4\n% test letter\n"


def _letter(
    db: Session,
    tmp_path: Path,
    *,
    company: str = "Atelier Martin SARL",
    status: str = "queued",
    **kw: object,
) -> tuple[Letter, Debtor]:
    owner = make_debtor(db, company=company, city="Lyon", postcode="69003")
    first = make_invoice(db, owner, number=f"F-{owner.id}-01")
    second = make_invoice(db, owner, number=f"F-{owner.id}-02")
    pdf = tmp_path / f"letter-{owner.id}.pdf"
    pdf.write_bytes(PDF)
    letter = Letter(
        debtor_id=owner.id,
        kind="mise_en_demeure",
        language="fr",
        status=status,
        invoice_ids=[first.id, second.id],
        principal_minor=173050,
        interest_minor=1895,
        indemnity_minor=8000,
        currency="EUR",
        deadline=utcnow().date() + timedelta(days=8),
        pdf_path=str(pdf),
        **kw,
    )
    db.add(letter)
    db.flush()
    return letter, owner


def _htmx(client: TestClient, path: str, **data: str):  # type: ignore[no-untyped-def]
    token = csrf_of(client, "/console/letters")
    return client.post(
        path,
        data=data,
        headers={"HX-Request": "true", "X-CSRF-Token": token},
        follow_redirects=False,
    )


def test_queued_letters_are_listed_with_amount_invoices_and_pdf(
    as_collector: TestClient, db: Session, tmp_path: Path
) -> None:
    letter, owner = _letter(db, tmp_path)
    posted, _ = _letter(
        db,
        tmp_path,
        company="Déjà Postée SA",
        status="sent",
        tracking_number="1A00000000001",
        sent_at=utcnow(),
    )
    page = as_collector.get("/console/letters")
    assert page.status_code == 200
    html = page.text
    for expected in (
        'href="/console/letters" class="active">Letters</a>',  # in the nav, current section
        f"MED-{letter.id:06d}",
        "Atelier Martin SARL",
        owner.customer_number,
        f"F-{owner.id}-01",
        f"F-{owner.id}-02",
        "€1,829.45",
        f'href="/console/letters/{letter.id}/pdf"',
        f'hx-post="/console/letters/{letter.id}/posted"',
        'name="tracking_number"',
        'name="csrf_token"',
        'To post <span class="count">1</span>',
        'class="tabs" id="letter-tabs">',  # the full page has no out-of-band markup
    ):
        assert expected in html, expected
    assert "Déjà Postée SA" not in html
    pdf = as_collector.get(f"/console/letters/{letter.id}/pdf")
    assert pdf.status_code == 200 and pdf.content == PDF
    assert pdf.headers["content-type"] == "application/pdf"
    assert f"MED-{letter.id:06d}.pdf" in pdf.headers["content-disposition"]
    assert as_collector.get("/console/letters/999999/pdf").status_code == 404

    done = as_collector.get("/console/letters?status=sent").text
    assert "Déjà Postée SA" in done and "1A00000000001" in done and f"MED-{posted.id:06d}" in done
    assert "Atelier Martin SARL" not in done


def test_htmx_mark_posted_stores_tracking_who_and_when_and_audits(
    as_collector: TestClient, db: Session, collector: User, tmp_path: Path
) -> None:
    letter, owner = _letter(db, tmp_path)
    response = _htmx(
        as_collector, f"/console/letters/{letter.id}/posted", tracking_number="1a 1234 5678 901"
    )
    assert response.status_code == 200
    assert response.text.lstrip().startswith(f'<tr id="letter-{letter.id}"')  # just the row
    assert "1A12345678901" in response.text and "posted" in response.text
    assert 'name="tracking_number"' not in response.text
    assert 'id="letter-tabs" hx-swap-oob="true"' in response.text  # counts follow
    db.refresh(letter)
    assert (letter.status, letter.tracking_number, letter.posted_by) == (
        "sent",
        "1A12345678901",
        f"user:{collector.email}",
    )
    assert letter.sent_at is not None
    [event] = db.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "letter.posted", AuditEvent.debtor_id == owner.id
        )
    ).all()
    assert event.actor == f"user:{collector.email}"
    assert event.details["tracking_number"] == "1A12345678901"

    # Posting again (a second tab, a colleague): refused, the first tracking number stays.
    again = _htmx(
        as_collector, f"/console/letters/{letter.id}/posted", tracking_number="2C99999999999"
    )
    assert again.status_code == 200 and "is sent, not queued" in again.text
    db.refresh(letter)
    assert letter.tracking_number == "1A12345678901"


def test_invalid_tracking_number_is_explained_and_nothing_changes(
    as_collector: TestClient, db: Session, tmp_path: Path
) -> None:
    letter, _ = _letter(db, tmp_path)
    response = _htmx(as_collector, f"/console/letters/{letter.id}/posted", tracking_number="1A/12")
    assert response.status_code == 200
    assert 'value="1A/12"' in response.text  # kept in the field to correct it
    assert (
        "8 to 20 letters and digits" in response.text and 'name="tracking_number"' in response.text
    )
    db.refresh(letter)
    assert (letter.status, letter.tracking_number) == ("queued", None)


def test_plain_form_needs_the_csrf_token_then_redirects(
    as_admin: TestClient, db: Session, admin: User, tmp_path: Path
) -> None:
    letter, _ = _letter(db, tmp_path)
    forged = as_admin.post(
        f"/console/letters/{letter.id}/posted",
        data={"tracking_number": "1A12345678901"},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    db.refresh(letter)
    assert letter.status == "queued"
    token = csrf_of(as_admin, "/console/letters")
    posted = as_admin.post(
        f"/console/letters/{letter.id}/posted",
        data={"tracking_number": "1A12345678901", "csrf_token": token},
        follow_redirects=False,
    )
    assert posted.status_code == 303
    assert posted.headers["location"] == "/console/letters?done=posted"
    assert "Letter marked posted" in as_admin.get(posted.headers["location"]).text
    db.refresh(letter)
    assert (letter.status, letter.posted_by) == ("sent", f"user:{admin.email}")


def test_signed_out_users_are_sent_to_login(
    client: TestClient, db: Session, tmp_path: Path
) -> None:
    letter, _ = _letter(db, tmp_path)
    for path in ("/console/letters", f"/console/letters/{letter.id}/pdf"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and "/console/login" in response.headers["location"]
    assert (
        client.post(
            f"/console/letters/{letter.id}/posted",
            data={"tracking_number": "1A12345678901"},
            follow_redirects=False,
        ).status_code
        == 303
    )
    db.refresh(letter)
    assert letter.status == "queued"
