"""The real stack for end-to-end tests: Rasa (own venv), action server, api and the Twilio sandbox
as separate processes, on free ports, against a fresh database migrated with Alembic.

Uses the same launcher code as `relance run` and the CI-trained model (cached by data hash).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

from relance.runtime import stack
from relance.runtime.paths import BOT_DIR
from relance.runtime.rasa_config import write_endpoints
from relance.runtime.training import ensure_model
from relance.settings import Settings

AUTH_TOKEN = "e2e-twilio-auth-token"

# The replicated topology (two api processes, two Rasa instances) needs PostgreSQL: the turn lock
# across processes is an advisory lock and Rasa's shared tracker store lives there. On SQLite the
# module is not collected at all, rather than collected and skipped.
collect_ignore = (
    []
    if os.environ.get("TEST_DATABASE_URL", "").startswith("postgres")
    else ["test_multi_process.py"]
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _e2e_database(tmp: Path) -> str:
    pg = os.environ.get("TEST_DATABASE_URL", "")
    if not pg.startswith("postgres"):
        return f"sqlite:///{tmp / 'e2e.db'}"
    from sqlalchemy.engine import make_url

    from relance.db.provision import ensure_postgres_database

    url = make_url(pg).set(database=(make_url(pg).database or "relance") + "_e2e")
    rendered = url.render_as_string(hide_password=False)
    ensure_postgres_database(rendered)
    return rendered


@dataclass
class RunningStack:
    base_url: str
    public_base_url: str
    sandbox_url: str
    env: dict[str, str]
    running: stack.Stack

    def signed_sms(
        self, sender: str, body: str, sid: str, *, token: str = AUTH_TOKEN
    ) -> httpx.Response:
        fields = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": "ACe2e0000000000000000000000000000",
            "From": sender,
            "To": "+33757000000",
            "Body": body,
            "NumMedia": "0",
        }
        url = self.public_base_url + "/twilio/sms"
        signature = RequestValidator(token).compute_signature(url, fields)
        return httpx.post(
            self.base_url + "/twilio/sms",
            data=fields,
            headers={"X-Twilio-Signature": signature},
            timeout=60,
        )

    def rasa_tracker(self, sender_id: str) -> dict[str, Any]:
        """Rasa's tracker of one conversation (its HTTP API, with the stack's token)."""
        response = httpx.get(
            f"{self.env['RASA_URL']}/conversations/{sender_id}/tracker",
            params={"token": self.env["RASA_AUTH_TOKEN"]},
            timeout=60,
        )
        response.raise_for_status()
        return dict(response.json())


@pytest.fixture(scope="session")
def e2e_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    tmp = tmp_path_factory.mktemp("e2e")
    ports = stack.Ports(
        api=_free_port(), rasa=_free_port(), actions=_free_port(), twilio_sandbox=_free_port()
    )
    database_url = _e2e_database(tmp)
    public = f"http://localhost:{ports.api}"
    env = stack.stack_env(
        {k: v for k, v in os.environ.items() if k not in ("TEST_DATABASE_URL",)},
        ports,
        {
            "ENVIRONMENT": "test",
            "DATABASE_URL": database_url,
            "VAR_DIR": str(tmp / "var"),
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "PUBLIC_BASE_URL": public,
            "RASA_AUTH_TOKEN": "e2e-rasa-token",
            "RASA_TIMEOUT_SECONDS": "30",  # a loaded 2-core CI machine is slow on the first turns
            "NLG_TOKEN": "e2e-nlg-token",
        },
    )
    settings = Settings(
        _env_file=None,
        **{k.lower(): v for k, v in env.items() if k.lower() in Settings.model_fields},
    )
    _prepare_database(settings)
    model = ensure_model(BOT_DIR / "config.ci.yml")
    endpoints = write_endpoints(
        settings,
        api_url=f"http://127.0.0.1:{ports.api}",
        action_url=f"http://127.0.0.1:{ports.actions}/webhook",
        path=tmp / "endpoints.yml",
    )
    running = stack.Stack(env=env, log_dir=tmp / "logs")
    try:
        running.start(stack.twilio_sandbox_service(ports))
        running.start(stack.api_service(ports))
        running.start(stack.actions_service(ports))
        running.start(  # loading the model took 7-9 min on the shared 2-core machine under load
            stack.rasa_service(ports, model, endpoints, settings.rasa_auth_token), timeout=900
        )
        yield RunningStack(
            base_url=f"http://127.0.0.1:{ports.api}",
            public_base_url=public,
            sandbox_url=f"http://127.0.0.1:{ports.twilio_sandbox}",
            env=env,
            running=running,
        )
    finally:
        running.stop()


def _prepare_database(settings: Settings) -> None:
    """Fresh schema through Alembic (so migrations are exercised), then the demo portfolio."""
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from relance.db.base import Base
    from relance.db.migrate import upgrade_to_head
    from relance.db.session import make_engine
    from relance.portfolio.demo import DEMO_CSV, demo_shift_days
    from relance.portfolio.importer import import_rows, read_csv

    url = settings.effective_database_url
    engine = make_engine(url)
    if url.startswith("postgresql"):
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    else:
        Base.metadata.drop_all(engine)
    upgrade_to_head(url)
    with Session(engine) as session:
        report = import_rows(
            session,
            read_csv(DEMO_CSV.read_text(encoding="utf-8")),
            actor="e2e",
            date_shift_days=demo_shift_days(date.today()),
        )
        assert report.ok, report.errors
        session.commit()
    engine.dispose()
