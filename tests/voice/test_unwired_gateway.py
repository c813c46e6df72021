"""A process that was never wired has no gateway: the voice channel says so instead of quietly
building a Twilio client of its own (the old `current_gateway()` fallback hid a missing
`relance.wiring.wire()` call, and texts left through a gateway nobody installed)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from relance.conversations import ports
from relance.conversations.repository import conversation_for_debtor
from tests.factories import make_debtor
from tests.support.channels import DEBTOR_PHONE
from tests.support.twilio_signing import call_fields, call_sid
from twilio_edge.forms import CallStart
from voice import service


def test_an_sms_during_a_call_in_an_unwired_process_fails_loudly(
    db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ports, "_gateway", None)
    debtor = make_debtor(db, phone=DEBTOR_PHONE, channels=("sms", "voice"), postcode="75011")
    call = CallStart.parse(call_fields(DEBTOR_PHONE, sid=call_sid()))
    conversation = conversation_for_debtor(db, debtor)

    with pytest.raises(RuntimeError, match=r"relance\.wiring\.wire\(\)"):
        service._send_sms(db, call, conversation, "https://pay.example/x", reason="link")
