"""The action server goes down mid-conversation, with the real processes (Rasa, actions, api).

What Rasa 3.6 does on its own: it cannot reach the action server, logs "Couldn't connect to the
server", drops the custom action's events and goes on, so the REST channel still answers 200
with an empty or half-done reply. What a paying customer expects instead: the debtor gets the
polite holding reply, nothing half-run and no debt detail; the messages are kept; once the action
server is back the worker's replay gives the real answers, in order, each once, and Rasa's
tracker holds each message once.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import date

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import Contact, Conversation, Debtor, Invoice, Message
from relance.db.models.enums import InvoiceStatus, MessageStatus
from relance.db.session import make_engine
from relance.nlg.formatting import money
from relance.rasa_client import RasaClient
from relance.runtime import stack

from .conftest import RunningStack

# The first test of a session waits for Rasa to load its model: slow on a busy 2-core machine.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

PHONE = "+33639980004"  # demo debtor C-FR-004 (postcode 59000), used by no other e2e test
HOLDING = "Merci pour votre message. Notre assistant est momentanément indisponible"
REPLAY = (
    "from relance.wiring import wire\n"
    "from relance.worker.jobs import replay_pending\n"
    "wire()\n"
    "print(replay_pending())\n"
)


def _replies(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [(m.text or "").strip() for m in ET.fromstring(response.text).iter("Message")]


def _session(running: RunningStack) -> Session:
    return Session(make_engine(running.env["DATABASE_URL"]))


def _balances(session: Session, debtor: Debtor) -> set[str]:
    """Every way the bot may state an amount owed (total, overdue part, each invoice)."""
    invoices = session.scalars(
        select(Invoice).where(Invoice.debtor_id == debtor.id, Invoice.status == InvoiceStatus.OPEN)
    ).all()
    amounts = {sum(i.balance_minor for i in invoices)}
    amounts |= {sum(i.balance_minor for i in invoices if i.due_date < date.today())}
    amounts |= {i.balance_minor for i in invoices}
    return {money(a, invoices[0].currency, debtor.language) for a in amounts if a}


def _recorded_to(running: RunningStack, phone: str) -> list[str]:
    recorded = httpx.get(running.sandbox_url + "/recorded", timeout=10).json()
    return [r["form"].get("Body", "") for r in recorded if r["form"].get("To") == phone]


def _replay(running: RunningStack) -> int:
    """One run of the worker's replay job, as its own process (like `relance worker`)."""
    done = subprocess.run(
        [sys.executable, "-c", REPLAY], env=running.env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1])


def _rasa(running: RunningStack) -> RasaClient:
    return RasaClient(running.env["RASA_URL"], running.env["RASA_AUTH_TOKEN"], 60)


def _tracker(running: RunningStack, sender_id: str) -> dict:  # type: ignore[type-arg]
    return running.rasa_tracker(sender_id)


def _restart_actions(running: RunningStack) -> None:
    port = int(running.env["ACTION_SERVER_URL"].rsplit(":", 1)[1])
    running.running.start(stack.actions_service(stack.Ports(actions=port)))


def test_what_rasa_does_without_its_action_server_and_how_a_half_turn_is_undone(
    e2e_stack: RunningStack,
) -> None:
    """Rasa's own behaviour, which the api must guard against, and the undo the api relies on."""
    sender = "fault-probe-actions-down"
    e2e_stack.running.stop("actions")
    try:
        raw = httpx.post(
            e2e_stack.env["RASA_URL"] + "/webhooks/rest/webhook",
            json={"sender": sender, "message": "Combien je dois ?", "metadata": {}},
            timeout=120,
        )
    finally:
        _restart_actions(e2e_stack)
    assert raw.status_code == 200, "Rasa does not fail the turn when its actions cannot run"
    assert _tracker(e2e_stack, sender)["latest_message"]["text"] == "Combien je dois ?"

    _rasa(e2e_stack).append_events(sender, [{"event": "rewind"}])
    assert not _tracker(e2e_stack, sender)["latest_message"].get("text")


def test_action_server_down_holding_reply_then_replay_in_order_once(
    e2e_stack: RunningStack,
) -> None:
    first = _replies(e2e_stack.signed_sms(PHONE, "Bonjour", sid="SMactdown" + "0" * 25))
    assert first, "the conversation works before the fault"
    sent_before = len(_recorded_to(e2e_stack, PHONE))

    e2e_stack.running.stop("actions")
    try:
        held = [
            _replies(e2e_stack.signed_sms(PHONE, body, sid=f"SMactdown{n:025d}"))
            for n, body in ((1, "Combien je dois ?"), (2, "59000"))
        ]
    finally:
        _restart_actions(e2e_stack)

    assert all(len(h) == 1 and h[0].startswith(HOLDING) for h in held), held
    with _session(e2e_stack) as session:
        debtor = session.scalars(
            select(Debtor).join(Contact).where(Contact.address == PHONE, Contact.channel == "sms")
        ).one()
        balances = _balances(session, debtor)
        conversation = session.scalars(
            select(Conversation).where(Conversation.debtor_id == debtor.id)
        ).one()
        pending = session.scalars(
            select(Message.body)
            .where(
                Message.conversation_id == conversation.id,
                Message.status == MessageStatus.PENDING_ASSISTANT,
            )
            .order_by(Message.id)
        ).all()
    assert pending == ["Combien je dois ?", "59000"]
    assert not any(b in h[0] for h in held for b in balances), "no debt detail while down"

    assert _replay(e2e_stack) == 2
    assert _replay(e2e_stack) == 0, "nothing is replayed twice"
    replayed = _recorded_to(e2e_stack, PHONE)[sent_before:]
    assert replayed, "the replay sent the real answers"
    amounts_at = [n for n, body in enumerate(replayed) if any(b in body for b in balances)]
    assert amounts_at and amounts_at[0] > 0, f"identity asked before the balance: {replayed}"
    assert len(replayed) == len(set(replayed)), f"no answer sent twice: {replayed}"

    with _session(e2e_stack) as session:
        statuses = session.scalars(
            select(Message.status)
            .where(Message.conversation_id == conversation.id, Message.direction == "inbound")
            .order_by(Message.id)
        ).all()
    assert statuses == [MessageStatus.RECEIVED] * 3
    events = _tracker(e2e_stack, conversation.sender_id)["events"]
    user_texts = [e.get("text") for e in events if e.get("event") == "user"]
    assert user_texts == ["Bonjour", "Combien je dois ?", "59000"], "each message once in Rasa"
