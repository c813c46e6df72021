from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from relance.db.models import Debtor
from tests.factories import make_debtor, make_invoice


def _debtor(db: Session) -> Debtor:
    debtor = make_debtor(
        db,
        channels=("sms",),
        phone="+33639981111",
        customer_number="C-9",
        name="Jean Dubois",
        language="fr",
        postcode="75015",
    )
    make_invoice(db, debtor, 123456, number="F-9", issued=date(2026, 10, 1), due=date(2026, 10, 31))
    db.flush()
    return debtor


def test_pick_page_lists_debtors_with_balance_in_their_locale(
    client: TestClient, db: Session
) -> None:
    _debtor(db)
    page = client.get("/simulator")
    assert page.status_code == 200
    assert "Jean Dubois" in page.text and "1\u202f234,56\xa0€" in page.text


def test_chat_page_and_unknown_debtor(client: TestClient, db: Session) -> None:
    debtor = _debtor(db)
    assert "Écrivez un message" in client.get(f"/simulator/{debtor.id}").text
    missing = client.get("/simulator/999999")
    assert missing.status_code == 404
    assert missing.json()["code"] == "debtor_not_found"  # a problem document, like every refusal


def test_simulator_is_off_in_production(client: TestClient, db: Session) -> None:
    from relance.settings import get_settings

    production = get_settings().model_copy(update={"environment": "production"})
    client.app.dependency_overrides[get_settings] = lambda: production
    assert client.get("/simulator").status_code == 404
