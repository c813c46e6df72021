"""Empty, trivial and public secrets never authenticate anything (issue 17.2).

Each test performs the attack the security review made: a STOP signed with an empty Twilio key,
`/nlg?token=` against an empty NLG token, a Stripe event signed with an empty secret, and in
development a payment forged with the public default webhook secret printed in the source.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from relance.db.models import AuditEvent, Message, Payment, WebhookEvent
from relance.local_secrets import FILE_NAME
from relance.settings import Settings, get_settings
from tests.factories import make_debtor, make_invoice
from tests.support.stripe_fake import StripeFake

PUBLIC_STRIPE_DEFAULT = Settings.model_fields["stripe_webhook_secret"].default


def stored(db: Session) -> tuple[int, ...]:
    return tuple(
        db.scalar(select(func.count()).select_from(m)) or 0
        for m in (Message, WebhookEvent, AuditEvent, Payment)
    )


@pytest.fixture
def empty_secrets_client(
    db: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """The app running with TWILIO_AUTH_TOKEN=, NLG_TOKEN= and STRIPE_WEBHOOK_SECRET= (test mode:
    production refuses to start with them, see tests/relance/test_settings.py)."""
    from relance.app import create_app

    for name in ("TWILIO_AUTH_TOKEN", "NLG_TOKEN", "STRIPE_WEBHOOK_SECRET"):
        monkeypatch.setenv(name, "")
    get_settings.cache_clear()
    with TestClient(create_app(get_settings()), raise_server_exceptions=False) as client:
        yield client
    get_settings.cache_clear()


def post_stop_signed_with(client: TestClient, key: str) -> int:
    """A STOP from a demo debtor's number, signed as Twilio would with `key`; the status code."""
    form = {
        "AccountSid": "ACtest00000000000000000000000000",
        "MessageSid": "SM" + "0" * 32,
        "From": "+33639980001",
        "To": "+33757000000",
        "Body": "STOP",
    }
    url = get_settings().public_base_url + "/twilio/sms"
    signature = RequestValidator(key).compute_signature(url, form)
    return client.post(
        "/twilio/sms", data=form, headers={"X-Twilio-Signature": signature}
    ).status_code


def test_stop_signed_with_an_empty_twilio_key_is_refused(
    empty_secrets_client: TestClient, db: Session
) -> None:
    before = stored(db)
    assert post_stop_signed_with(empty_secrets_client, "") == 403
    assert stored(db) == before


@pytest.mark.parametrize("query", ["?token=", "", "?token=%20"])
def test_nlg_with_an_empty_configured_token_is_refused(
    empty_secrets_client: TestClient, query: str
) -> None:
    response = empty_secrets_client.post(f"/nlg{query}", json={"response": "utter_greet"})
    assert response.status_code == 401


def test_stripe_event_signed_with_an_empty_secret_is_refused(
    empty_secrets_client: TestClient, db: Session
) -> None:
    debtor = make_debtor(db, channels=("sms",))
    make_invoice(db, debtor, 797_046, due=date(2026, 3, 10))
    event = StripeFake.event(
        "payment_intent.succeeded",
        {
            "id": "pi_forged",
            "object": "payment_intent",
            "amount": 797_046,
            "amount_received": 797_046,
            "currency": "eur",
            "metadata": {"relance_debtor_id": str(debtor.id)},
        },
    )
    payload, header = StripeFake.signed(event, "")
    before = stored(db)
    response = empty_secrets_client.post(
        "/stripe/webhook", content=payload, headers={"Stripe-Signature": header}
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_signature"
    assert stored(db) == before


@pytest.fixture
def development_client(
    db: Session, settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[TestClient]:
    """A development install with no secret configured: the defaults of relance/settings.py."""
    from relance.app import create_app

    monkeypatch.setenv("ENVIRONMENT", "development")
    for name in (
        "TWILIO_AUTH_TOKEN",
        "STRIPE_WEBHOOK_SECRET",
        "SECRET_KEY",
        "NLG_TOKEN",
        "RASA_AUTH_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "dev-var"))
    get_settings.cache_clear()
    with TestClient(create_app(get_settings()), raise_server_exceptions=False) as client:
        yield client
    get_settings.cache_clear()


def test_development_payment_forged_with_the_public_default_secret_is_refused(
    development_client: TestClient, db: Session, tmp_path: Path
) -> None:
    debtor = make_debtor(db, channels=("sms",))
    invoice = make_invoice(db, debtor, 797_046, due=date(2026, 3, 10))
    event = StripeFake.event(
        "payment_intent.succeeded",
        {
            "id": "pi_forged_dev",
            "object": "payment_intent",
            "amount": 797_046,
            "amount_received": 797_046,
            "currency": "eur",
            "metadata": {"relance_debtor_id": str(debtor.id)},
        },
    )
    payload, header = StripeFake.signed(event, PUBLIC_STRIPE_DEFAULT)
    response = development_client.post(
        "/stripe/webhook", content=payload, headers={"Stripe-Signature": header}
    )
    assert response.status_code == 400
    db.expire_all()
    assert db.scalar(select(func.count(Payment.id)).where(Payment.debtor_id == debtor.id)) == 0
    assert invoice.status == "open"
    # The installation's own secret, generated on first run, private to its owner, works.
    path = tmp_path / "dev-var" / FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    own = json.loads(path.read_text())["stripe_webhook_secret"]
    assert own == get_settings().stripe_webhook_secret != PUBLIC_STRIPE_DEFAULT
    payload, header = StripeFake.signed(event, own)
    accepted = development_client.post(
        "/stripe/webhook", content=payload, headers={"Stripe-Signature": header}
    )
    assert accepted.status_code == 200, accepted.text


def test_development_twilio_and_nlg_defaults_are_not_accepted(
    development_client: TestClient, db: Session
) -> None:
    nlg = development_client.post(
        f"/nlg?token={Settings.model_fields['nlg_token'].default}", json={"response": "utter_greet"}
    )
    assert nlg.status_code == 401
    before = stored(db)
    public_default = Settings.model_fields["twilio_auth_token"].default
    assert post_stop_signed_with(development_client, public_default) == 403
    assert stored(db) == before
