"""A reminder e-mail carries the debtor's portal link: one link per debtor, reused while valid.

The link is the debtor's own (it opens on the identity check, never on the debt), the second
reminder prints the same link (no new bearer token per message), and once a collector revokes
it the next reminder carries a new one.
"""

from __future__ import annotations

import re
from datetime import date

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from mail.gateway import SmtpMailGateway
from relance.conversations.ports import OutboundMail
from relance.conversations.repository import conversation_for_debtor
from relance.db.models import Contact, Debtor, Invoice
from relance.portal.access import find_access, revoke
from relance.portal.models import PortalAccess
from tests.factories import make_debtor, make_invoice
from tests.mail.conftest import DEBTOR_EMAIL
from tests.mail.sink import Sink

PORTAL = re.compile(r"https?://[^\s<>\"]+/portal/([A-Za-z0-9_-]{20,})")


def _debtor(db: Session) -> tuple[Debtor, Invoice]:
    debtor = make_debtor(db, channels=("email", "sms"), email=DEBTOR_EMAIL, postcode="75011")
    invoice = make_invoice(
        db, debtor, 123450, number="F-2026-0042", issued=date(2026, 10, 1), due=date(2026, 11, 1)
    )
    return debtor, invoice


def _remind(db: Session, gateway: SmtpMailGateway, debtor: Debtor, invoice: Invoice, key: str):
    contact = db.scalars(
        select(Contact).where(Contact.debtor_id == debtor.id, Contact.channel == "email")
    ).one()
    mail = OutboundMail(
        idempotency_key=key,
        paragraphs=("Malgré nos relances, la facture reste impayée.",),
        stage="firm",
        invoice_ids=(invoice.id,),
    )
    conversation = conversation_for_debtor(db, debtor)
    gateway.send_mail(db, conversation=conversation, contact=contact, mail=mail)


def _tokens(sink: Sink, index: int) -> tuple[str, str]:
    """The portal token in the plain text and in the HTML of the `index`-th e-mail."""
    message = sink.received[index].message
    plain = message.get_body(preferencelist=("plain",)).get_content()
    markup = message.get_body(preferencelist=("html",)).get_content()
    in_text, in_html = PORTAL.search(plain), PORTAL.search(markup)
    assert in_text and in_html, plain
    return in_text.group(1), in_html.group(1)


def test_reminder_e_mail_links_to_the_debtors_portal_behind_the_identity_check(
    db: Session, sink: Sink, mail_gateway: SmtpMailGateway, client: TestClient
) -> None:
    debtor, invoice = _debtor(db)
    _remind(db, mail_gateway, debtor, invoice, "dunning:g1:firm")
    token, same = _tokens(sink, 0)
    assert token == same
    access = find_access(db, token)
    assert access is not None and access.debtor_id == debtor.id
    assert db.scalars(select(PortalAccess.token_hash)).all() == [access.token_hash]
    assert token not in {access.token_hash, access.seed}  # never stored in clear
    page = client.get(f"/portal/{token}")
    assert page.status_code == 200
    assert 'action="/portal/' in page.text and "/identity" in page.text
    assert "F-2026-0042" not in page.text and "1 234,50" not in page.text


def test_the_same_link_is_printed_again_while_it_is_valid(
    db: Session, sink: Sink, mail_gateway: SmtpMailGateway
) -> None:
    debtor, invoice = _debtor(db)
    _remind(db, mail_gateway, debtor, invoice, "dunning:g1:firm")
    _remind(db, mail_gateway, debtor, invoice, "dunning:g1:final")
    assert _tokens(sink, 0)[0] == _tokens(sink, 1)[0]
    assert len(db.scalars(select(PortalAccess)).all()) == 1


def test_a_revoked_link_is_replaced_at_the_next_reminder(
    db: Session, sink: Sink, mail_gateway: SmtpMailGateway, client: TestClient
) -> None:
    debtor, invoice = _debtor(db)
    _remind(db, mail_gateway, debtor, invoice, "dunning:g1:firm")
    first = _tokens(sink, 0)[0]
    access = find_access(db, first)
    assert access is not None
    revoke(db, access, actor="collector")
    _remind(db, mail_gateway, debtor, invoice, "dunning:g1:final")
    second = _tokens(sink, 1)[0]
    assert second != first
    fresh = find_access(db, second)
    assert fresh is not None and fresh.debtor_id == debtor.id and fresh.revoked_at is None
    assert client.get(f"/portal/{first}").status_code >= 400  # the revoked link is dead
    assert client.get(f"/portal/{second}").status_code == 200


def test_a_discreet_reminder_carries_no_portal_link(
    db: Session, sink: Sink, mail_gateway: SmtpMailGateway
) -> None:
    debtor, invoice = _debtor(db)
    contact = db.scalars(
        select(Contact).where(Contact.debtor_id == debtor.id, Contact.channel == "email")
    ).one()
    mail = OutboundMail(
        idempotency_key="dunning:g1:friendly",
        paragraphs=("Bonjour, merci de nous recontacter.",),
        stage="friendly",
        invoice_ids=(invoice.id,),
        discreet=True,
    )
    mail_gateway.send_mail(
        db, conversation=conversation_for_debtor(db, debtor), contact=contact, mail=mail
    )
    assert "/portal/" not in sink.received[0].data.decode(errors="replace")
    assert db.scalars(select(PortalAccess)).first() is None
