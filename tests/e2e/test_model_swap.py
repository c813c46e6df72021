"""The production model replaces the quick one in a running Rasa without dropping a conversation
(relance/runtime/background_training.py): the debtor's next message is answered in context, by
the new model."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from relance.runtime.background_training import load_model
from relance.runtime.paths import BOT_DIR
from relance.runtime.training import ensure_model

from .conftest import RunningStack

pytestmark = pytest.mark.e2e

PHONE = "+447700900104"  # C-EN-007, used by no other e2e test


def _replies(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [(m.text or "").strip() for m in ET.fromstring(response.text).iter("Message")]


def test_loading_a_new_model_keeps_the_conversation(
    e2e_stack: RunningStack, tmp_path: Path
) -> None:
    rasa_url = e2e_stack.env["RASA_URL"]
    token = e2e_stack.env["RASA_AUTH_TOKEN"]
    first = _replies(e2e_stack.signed_sms(PHONE, "Hello", sid="SMswap" + "0" * 28))
    assert first and all(first)

    # Another file name, so Rasa's status shows the swap happened.
    production = tmp_path / "production-model.tar.gz"
    shutil.copy(ensure_model(BOT_DIR / "config.ci.yml", echo=False), production)
    load_model(rasa_url, token, production)
    status = httpx.get(f"{rasa_url}/status", params={"token": token}, timeout=10).json()
    assert Path(status["model_file"]).name == production.name

    second = _replies(e2e_stack.signed_sms(PHONE, "How much do I owe?", sid="SMswap" + "1" * 28))
    assert second and all(second)
    tracker = httpx.get(
        f"{rasa_url}/conversations/{_conversation_id(e2e_stack)}/tracker",
        params={"token": token},
        timeout=10,
    ).json()
    said = [e.get("text") for e in tracker["events"] if e.get("event") == "user"]
    assert said[-2:] == ["Hello", "How much do I owe?"], "the tracker kept the first turn"


def test_a_model_rasa_cannot_load_is_refused_and_the_old_one_keeps_serving(
    e2e_stack: RunningStack, tmp_path: Path
) -> None:
    rasa_url = e2e_stack.env["RASA_URL"]
    token = e2e_stack.env["RASA_AUTH_TOKEN"]
    before = httpx.get(f"{rasa_url}/status", params={"token": token}, timeout=10).json()
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not a model")
    with pytest.raises(RuntimeError, match="refused the model"):
        load_model(rasa_url, token, broken)
    after = httpx.get(f"{rasa_url}/status", params={"token": token}, timeout=10).json()
    assert after["model_file"] == before["model_file"]
    replies = _replies(e2e_stack.signed_sms(PHONE, "Hello again", sid="SMswap" + "2" * 28))
    assert replies and all(replies)


def _conversation_id(stack: RunningStack) -> str:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from relance.db.models import Contact
    from relance.db.session import make_engine

    with Session(make_engine(stack.env["DATABASE_URL"])) as session:
        debtor_id = session.scalar(
            select(Contact.debtor_id).where(Contact.address == PHONE, Contact.channel == "sms")
        )
    return f"debtor-{debtor_id}"
