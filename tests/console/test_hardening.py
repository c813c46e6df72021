"""Issue 17.7: files with personal data are 0600, console pages carry CSP / no-framing /
no-store headers on every page, and the API schema is off in production."""

from __future__ import annotations

import os
import re
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from relance.app import create_app
from relance.cli.main import app as cli
from relance.db.base import utcnow
from relance.db.models import User
from relance.letters.service import create_formal_notice
from relance.private_files import write_private
from relance.settings import Settings
from tests.console.test_route_ids import _routes
from tests.factories import make_debtor, make_handed_off_case, make_invoice

runner = CliRunner()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> object:
    """The usual umask 022, under which write_bytes made 0644 files."""
    previous = os.umask(0o022)
    yield previous
    os.umask(previous)


# --- file modes --------------------------------------------------------------------------------


@freeze_time("2026-11-23 10:00:00")
def test_letter_pdf_is_written_owner_only(db: Session, tmp_path: Path, open_umask: object) -> None:
    debtor = make_debtor(db, segment="b2b", channels=("sms", "whatsapp"))
    invoice = make_invoice(db, debtor, due=utcnow().date() - timedelta(days=35))
    letter = create_formal_notice(db, debtor, [invoice.id], out_dir=tmp_path / "letters")
    assert _mode(Path(letter.pdf_path or "")) == 0o600
    assert _mode(tmp_path / "letters") == 0o700


@freeze_time("2026-11-23 10:00:00")
def test_cli_evidence_pack_letter_and_export_are_owner_only(
    db: Session, tmp_path: Path, open_umask: object
) -> None:
    debtor = make_debtor(db, segment="b2b", channels=("sms", "whatsapp"))
    make_invoice(db, debtor, due=utcnow().date() - timedelta(days=35))
    pack, pdf, export = tmp_path / "pack.zip", tmp_path / "letter.pdf", tmp_path / "export.zip"
    for args in (
        ["evidence", str(debtor.id), "--out", str(pack)],
        ["letters", "render", "--debtor", str(debtor.id), "--out", str(pdf)],
        ["debtor", "export", debtor.customer_number, "--out", str(export)],
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
    assert [_mode(p) for p in (pack, pdf, export)] == [0o600, 0o600, 0o600]


def test_an_existing_wider_file_is_narrowed(tmp_path: Path, open_umask: object) -> None:
    target = tmp_path / "old.zip"
    target.write_bytes(b"old")
    target.chmod(0o644)
    write_private(target, b"new")
    assert (_mode(target), target.read_bytes()) == (0o600, b"new")


# --- console headers ---------------------------------------------------------------------------


def _console_get_pages(client: TestClient, db: Session) -> list[str]:
    """Every GET route of the console, with real ids for its path parameters."""
    _debtor, conv, _handoff = make_handed_off_case(db)
    letter_debtor = make_debtor(db, segment="b2b", channels=("sms", "whatsapp"))
    invoice = make_invoice(db, letter_debtor, due=utcnow().date() - timedelta(days=35))
    letter = create_formal_notice(db, letter_debtor, [invoice.id])
    from relance.experiments import service as experiments
    from relance.nlg.templates_store import active_templates

    experiment = experiments.create(
        db,
        experiments.ExperimentSpec(
            key="hardening",
            name="Headers",
            template="utter_reminder_discreet",
            arms=[experiments.ArmSpec("a", 0), experiments.ArmSpec("b", 1)],
        ),
        actor="test",
        templates=active_templates(db),
    )
    values = {
        "conversation_id": str(conv.id),
        "letter_id": str(letter.id),
        "name": "utter_greet",
        "experiment_id": str(experiment.id),
    }
    pages = []
    for path, route in _routes(client.app):  # type: ignore[arg-type]
        if "GET" not in (route.methods or ()) or not path.startswith("/console"):
            continue
        if path.startswith("/console/static/"):
            continue
        url = re.sub(r"\{([^}]+)\}", lambda m: values[m.group(1)], path)
        if url.endswith("/diff"):
            url += "?old=0"
        pages.append(url)
    return pages


def test_every_console_page_has_csp_no_framing_and_no_store(
    client: TestClient, db: Session, admin: User
) -> None:
    from tests.console.conftest import login

    pages = _console_get_pages(client, db)
    assert len(pages) >= 15
    login_page = client.get("/console/login")  # before signing in too
    responses = {"/console/login (anonymous)": login_page}
    assert login(client, admin.email).status_code == 303
    responses |= {url: client.get(url, follow_redirects=False) for url in pages}
    responses["/console/conversations/999999 (404 page)"] = client.get(
        "/console/conversations/999999"
    )
    for url, response in responses.items():
        assert response.status_code < 500, url
        headers = response.headers
        csp = headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, url
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, url
        assert headers.get("x-frame-options") == "DENY", url
        assert headers.get("cache-control") == "no-store", url
        assert headers.get("x-content-type-options") == "nosniff", url


def test_console_html_has_no_inline_script_or_style(
    client: TestClient, db: Session, admin: User
) -> None:
    """What the CSP would block: inline <script>, <style>, style= and on*= attributes."""
    from tests.console.conftest import login

    pages = _console_get_pages(client, db)
    assert login(client, admin.email).status_code == 303
    inline = re.compile(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=", re.IGNORECASE)
    for url in pages:
        response = client.get(url)
        if "text/html" not in response.headers.get("content-type", ""):
            continue
        assert not inline.search(response.text), (url, inline.search(response.text))
    base = client.get("/console/").text
    assert '<script src="/console/static/htmx.min.js" defer></script>' in base
    assert '"allowEval": false' in base  # htmx never needs unsafe-eval here


def test_static_files_stay_cacheable(client: TestClient) -> None:
    response = client.get("/console/static/console.css")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=3600"
    assert response.headers["x-frame-options"] == "DENY"


def test_payment_page_keeps_its_own_referrer_policy(client: TestClient) -> None:
    response = client.get("/pay/" + "x" * 43)
    assert response.headers["referrer-policy"] == "no-referrer"  # not the default same-origin
    assert response.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" not in response.headers  # the console's policy only


# --- API docs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "api_docs", "served"),
    [
        ("production", None, False),
        ("production", True, True),
        ("development", None, True),
        ("test", False, False),
    ],
)
def test_api_docs_follow_the_environment(
    settings: Settings, db: Session, environment: str, api_docs: bool | None, served: bool
) -> None:
    # model_copy: the production checks on secrets are another test's business
    configured = settings.model_copy(update={"environment": environment, "api_docs": api_docs})
    with TestClient(create_app(configured)) as client:
        for path in ("/docs", "/openapi.json", "/redoc"):
            assert (client.get(path).status_code == 200) is served, path
        assert client.get("/healthz").status_code == 200
