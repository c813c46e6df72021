"""One-click unsubscribe (RFC 8058) end to end: the link in the sent e-mail, POSTed the way a mail
client posts it, opts the e-mail contact out (audited) and nothing else; a forged or stale link
is refused and changes nothing."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from mail import unsubscribe
from mail.gateway import SmtpMailGateway
from relance.conversations.ports import OutboundMail
from relance.conversations.repository import conversation_for_debtor
from relance.db.models import AuditEvent, Contact, Debtor
from relance.settings import get_settings
from tests.factories import make_debtor
from tests.mail.conftest import DEBTOR_EMAIL
from tests.mail.sink import Sink

ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}


def _contacts(db: Session, debtor: Debtor) -> dict[str, Contact]:
    db.expire_all()
    rows = db.scalars(select(Contact).where(Contact.debtor_id == debtor.id))
    return {c.channel: c for c in rows}


def _link_in_sent_mail(db: Session, sink: Sink, gateway: SmtpMailGateway, debtor: Debtor) -> str:
    """The https link of List-Unsubscribe, as the debtor's mail client reads it."""
    contact = _contacts(db, debtor)["email"]
    gateway.send_mail(
        db,
        conversation=conversation_for_debtor(db, debtor),
        contact=contact,
        mail=OutboundMail(idempotency_key="u1", paragraphs=("Rappel.",), stage="friendly"),
    )
    message = sink.received[-1].message
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = re.findall(r"<([^>]+)>", message["List-Unsubscribe"])[0]
    return link.removeprefix("http://testserver")


def _opt_out_events(db: Session) -> list[AuditEvent]:
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == "contact.opted_out")))


def test_one_click_post_opts_out_of_email_only_and_is_audited(
    db: Session, client: TestClient, sink: Sink, mail_gateway: SmtpMailGateway
) -> None:
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    path = _link_in_sent_mail(db, sink, mail_gateway, debtor)
    response = client.post(path, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert response.status_code == 200, response.text
    contacts = _contacts(db, debtor)
    assert contacts["email"].opted_out_at is not None and not contacts["email"].reachable
    assert contacts["sms"].opted_out_at is None and contacts["sms"].reachable  # SMS carries on
    [event] = _opt_out_events(db)
    assert event.debtor_id == debtor.id
    assert event.details["channel"] == "email" and event.details["source"] == "list-unsubscribe"
    # A client retrying the POST changes nothing and records nothing more.
    again = client.post(path, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert again.status_code == 200 and len(_opt_out_events(db)) == 1


def test_opening_the_link_does_not_opt_out(
    db: Session, client: TestClient, sink: Sink, mail_gateway: SmtpMailGateway
) -> None:
    """A link scanner or a prefetching client GETs the URL: that is a page, never the opt-out."""
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    path = _link_in_sent_mail(db, sink, mail_gateway, debtor)
    page = client.get(path)
    assert page.status_code == 200 and '<form method="post">' in page.text
    assert _contacts(db, debtor)["email"].opted_out_at is None and _opt_out_events(db) == []


def _forged(db: Session, debtor: Debtor, victim: Debtor) -> str:
    """The victim's contact in the payload, under the signature of the debtor's genuine link."""
    genuine = unsubscribe.token_for(_contacts(db, debtor)["email"], get_settings())
    victims = unsubscribe.token_for(_contacts(db, victim)["email"], get_settings())
    return victims.rsplit(".", 1)[0] + "." + genuine.rsplit(".", 1)[1]


@pytest.mark.parametrize("attack", ["tampered", "other_key", "stale", "sms_contact"])
def test_forged_or_stale_link_is_refused_and_changes_nothing(
    db: Session, client: TestClient, sink: Sink, attack: str
) -> None:
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL)
    victim = make_debtor(
        db, channels=("email", "sms"), email="victim@client.example", phone="+33639985678"
    )
    settings = get_settings()
    victim_email = _contacts(db, victim)["email"]
    if attack == "tampered":  # someone else's contact under this debtor's signature
        token = _forged(db, debtor, victim)
    elif attack == "other_key":  # signed with a guessed secret
        token = unsubscribe._serializer(
            settings.model_copy(update={"secret_key": "guessed-secret-" * 3})
        ).dumps([victim_email.id, unsubscribe._digest(victim_email.address)])
    elif attack == "stale":  # the link of an address since replaced on the contact
        token = unsubscribe.token_for(victim_email, settings)
        victim_email.address = "new.address@client.example"
        db.flush()
    else:  # a validly signed token naming the SMS contact: e-mail links never opt out of SMS
        sms = _contacts(db, victim)["sms"]
        token = unsubscribe._serializer(settings).dumps([sms.id, unsubscribe._digest(sms.address)])
    response = client.post(
        f"/mail/unsubscribe/{token}", content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK
    )
    assert response.status_code == 403, response.text
    assert response.json()["detail"] == "this unsubscribe link is not valid"
    assert client.get(f"/mail/unsubscribe/{token}").status_code == 403
    assert all(c.opted_out_at is None for c in _contacts(db, victim).values())
    assert all(c.opted_out_at is None for c in _contacts(db, debtor).values())
    assert _opt_out_events(db) == []


def test_tokens_are_itsdangerous_url_safe_ones_without_the_compression_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tokens are byte for byte those `URLSafeSerializer` makes (links already sent keep
    working, a compressed one is still read), made without calling zlib: its per-call set-up
    was a tenth of an e-mail's cost in the dispatcher's batches (issue 19)."""
    import zlib

    from itsdangerous import URLSafeSerializer

    settings = get_settings()
    reference = URLSafeSerializer(settings.secret_key, salt=unsubscribe.SALT)
    calls: list[bytes] = []
    compress = zlib.compress
    monkeypatch.setattr(zlib, "compress", lambda data, *a: calls.append(data) or compress(data))
    for contact_id in (1, 4242, 2**40):
        for address in ("a@b.example", "camille.martin@client.example", "x" * 300 + "@y.fr"):
            contact = Contact(id=contact_id, channel="email", address=address)
            token = unsubscribe.token_for(contact, settings)
            assert token == str(reference.dumps([contact_id, unsubscribe._digest(address)]))
            assert unsubscribe._serializer(settings).loads(token) == [
                contact_id,
                unsubscribe._digest(address),
            ]
    tokens_made = len(calls)
    assert tokens_made == 9  # only the reference serializer compressed
    long_payload = reference.dumps(["y" * 200])  # compressible: itsdangerous marks it "."
    assert long_payload.startswith(".")
    assert unsubscribe._serializer(settings).loads(long_payload) == ["y" * 200]
