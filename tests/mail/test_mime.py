"""The directly written e-mail (`mail.mime`) reads back as the `email` package's own (`build`).

`message_bytes` writes the reminder's bytes without the `email` package (issue 19: its header
parsing and folding cost more than the SMTP exchange). Whatever a reader parses out of them
must be what it parsed out of the package's output: the same headers in the same order with
the same values, the same parts with the same types, parameters and decoded contents. And a
DKIM signature over them must verify.
"""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mail import mime
from mail.compose import Attachment, Envelope, Parts, build, message_bytes, to_bytes
from relance.settings import Settings

LONG = "Deuxième paragraphe, assez long pour être plié en quoted-printable. " * 6

PARTS = {
    "discreet": Parts(
        subject="Rappel – Relance Demo SAS",
        paragraphs=("[friendly] F-2026-000119",),
        language="fr",
        stage="friendly",
        footer="Relance Demo SAS, 12 rue de la Paix – SIREN 000 000 000 – " + "x" * 60,
        unsubscribe="Pour ne plus recevoir ces e-mails : https://x.example/mail/unsubscribe/tok",
    ),
    "full": Parts(
        subject="Rappel : facture F-2026-000119 – échéance dépassée depuis le 20 novembre, "
        "merci de régulariser rapidement",
        paragraphs=("Bonjour Camille,\n\nVotre facture de 120,00 € est échue.  ", LONG),
        language="fr",
        stage="firm",
        pay_url="https://pay.example/pay/abc-def",
        pay_label="Payer maintenant",
        portal_note="Votre espace : https://portal.example/p/xyz",
        attachments_note="Pièces jointes : F-1",
        legal="Mentions légales = indemnité forfaitaire de 40 €. " * 4,
        footer="Relance Demo SAS",
        unsubscribe="Pour ne plus recevoir: https://x.example/u/tok",
    ),
    "ascii_long_subject": Parts(
        subject="Reminder: invoices F-2026-000119, F-2026-000120, F-2026-000121, "
        "F-2026-000122 are overdue since November",
        paragraphs=("Hello,", "Short plain lines only.", "=?utf-8?q?not_a_word?="),
        language="en",
        stage="friendly",
        footer="Relance Demo Ltd",
    ),
}
ENVELOPES = {
    "first": Envelope(
        sender="relances@creancier.example",
        recipient="debtor1@client1.example",
        message_id="<5989048a47615144c1f64b583ce832dde46c7cb2@creancier.example>",
        unsubscribe_url="https://testserver/mail/unsubscribe/WzEyMCwiN2M4ZmMzMzJmOGM0ZTU3NCJd.77mA",
        auto_submitted="auto-generated",
    ),
    "threaded_with_attachments": Envelope(
        sender="relances@creancier.example",
        recipient="camille.martin@client.example",
        message_id="<abc@creancier.example>",
        in_reply_to="<r9@client.example>",
        references=tuple(f"<r{i}@client.example>" for i in range(10)),
        unsubscribe_url="https://testserver/mail/unsubscribe/tok",
        auto_submitted="auto-generated",
        attachments=(
            Attachment("F-2026-000119.pdf", b"%PDF-1.4 " + bytes(range(256)) * 9),
            Attachment("MED-2026-0001.pdf", b"%PDF-1.4 letter"),
        ),
    ),
    "reply": Envelope(
        sender="relances@creancier.example",
        recipient="debtor1@client1.example",
        message_id="<reply@creancier.example>",
        auto_submitted="auto-replied",
    ),
}


def _parsed(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


def _headers(part: EmailMessage) -> list[tuple[str, str]]:
    """Names and values as a reader gets them, but the boundaries (random on both sides) and
    the date (the clock)."""
    out = []
    for name, value in part.items():
        text = str(value)
        if name.lower() == "content-type":
            text = text.split(";")[0] + str(
                sorted(p for p in part.get_params() or [] if p[0] != "boundary")
            )
        if name.lower() != "date":
            out.append((name, " ".join(text.split())))
    return out


def _reading(data: bytes) -> list[tuple[list[tuple[str, str]], Any]]:
    """Every part, depth first: its headers and its decoded content (None for a multipart)."""
    reading = []
    for part in _parsed(data).walk():
        assert isinstance(part, EmailMessage)
        content = None if part.is_multipart() else part.get_content()
        reading.append((_headers(part), content))
    return reading


@pytest.mark.parametrize("parts", list(PARTS))
@pytest.mark.parametrize("envelope", list(ENVELOPES))
def test_the_direct_bytes_read_back_as_the_email_package_s(
    parts: str, envelope: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "mail_reply_to", "reponses@creancier.example")
    monkeypatch.setattr(settings, "creditor_name", "Relance Demo, SAS")
    ours = message_bytes(PARTS[parts], ENVELOPES[envelope], settings)
    theirs = to_bytes(build(PARTS[parts], ENVELOPES[envelope], settings), settings)
    assert ours != theirs  # really the direct writer (its boundaries and folding differ)
    assert _reading(ours) == _reading(theirs)
    assert all(len(line) <= 998 for line in ours.split(b"\r\n"))
    assert b"\n" not in ours.replace(b"\r\n", b"")  # CRLF only
    assert max(len(line) for line in ours.split(b"\r\n\r\n", 1)[0].split(b"\r\n")) <= 100


def test_the_unsubscribe_list_stays_a_list_of_links(settings: Settings) -> None:
    """RFC 2369: `<https://…>, <mailto:…>` on the wire, not encoded-words."""
    ours = message_bytes(PARTS["discreet"], ENVELOPES["first"], settings)
    head = ours.split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b" ")
    assert (
        b"List-Unsubscribe: <https://testserver/mail/unsubscribe/WzEyMCwiN2M4ZmMzMzJmOGM0ZTU3NCJd"
        b".77mA>, <mailto:relances@creancier.example?subject=unsubscribe>\r\n" in head + b"\r\n"
    )


def test_a_non_ascii_recipient_is_left_to_the_email_package(settings: Settings) -> None:
    envelope = Envelope(
        sender="relances@creancier.example",
        recipient="zoé@client.example",
        message_id="<idn@creancier.example>",
    )
    assert not mime.is_ascii(envelope.recipient)
    ours = message_bytes(PARTS["discreet"], envelope, settings)
    assert str(_parsed(ours)["To"]) == "zoé@client.example"


def test_a_dkim_signature_over_the_direct_bytes_verifies(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = tmp_path / "dkim.pem"
    path.write_bytes(pem)
    monkeypatch.setattr(settings, "dkim_private_key_path", str(path))
    import base64

    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    for parts in PARTS.values():
        data = message_bytes(parts, ENVELOPES["threaded_with_attachments"], settings)
        assert data.startswith(b"DKIM-Signature:")
        signed = data.split(b"\r\n\r\n", 1)[0].split(b"h=", 1)[1].split(b";", 1)[0]
        assert b"list-unsubscribe" in signed.replace(b"\r\n", b"").replace(b" ", b"")
        assert dkim.verify(data, dnsfunc=lambda _name, timeout=5: record)
