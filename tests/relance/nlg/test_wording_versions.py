"""Wording versions: one validation whoever saves (console editor, rollback, experiment promotion)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance import versioning
from relance.db.models import VersionedDocument
from relance.errors import BadInput, NotFound
from relance.nlg import wording_versions
from relance.nlg.templates_store import WORDING_KIND

HELP = "utter_help"
GOOD = {HELP: [{"fr": "Aide : {{ creditor_phone }}", "en": "Help: {{ creditor_phone }}"}]}
BROKEN = {HELP: [{"fr": "Aide : {{ debtor_balance }}", "en": "Help"}]}


def _versions(db: Session) -> int:
    query = select(func.count()).where(VersionedDocument.kind == WORDING_KIND)
    return int(db.scalar(query) or 0)


def test_save_refuses_a_broken_document_and_stores_nothing(db: Session) -> None:
    before = _versions(db)
    with pytest.raises(BadInput) as refused:
        wording_versions.save(db, BROKEN, actor="admin", comment="")
    assert refused.value.code == "wording_invalid"
    assert any("debtor_balance" in p for p in refused.value.details["problems"])
    assert _versions(db) == before


def test_save_reset_and_document_of_each_version(db: Session) -> None:
    saved = wording_versions.save(db, GOOD, actor="admin", comment="edit help")
    assert wording_versions.overrides(db) == GOOD
    assert wording_versions.document(db, saved.version) == GOOD
    assert wording_versions.document(db, 0) == {}
    assert wording_versions.reset(db, "utter_nothing_to_reset", actor="admin", comment="") is None
    reset = wording_versions.reset(db, HELP, actor="admin", comment="")
    assert reset is not None and reset.comment == f"reset {HELP} to default"
    assert wording_versions.overrides(db) == {}
    with pytest.raises(NotFound):
        wording_versions.document(db, saved.version + 1000)


def test_restore_refuses_a_version_that_no_longer_validates(db: Session) -> None:
    # Stored before the validation existed (the case rollback must still guard against).
    old = versioning.save_version(db, WORDING_KIND, BROKEN, actor="admin", comment="legacy")
    wording_versions.save(db, GOOD, actor="admin", comment="fixed")
    with pytest.raises(BadInput) as refused:
        wording_versions.restore(db, old.version, actor="admin")
    assert refused.value.code == "wording_invalid"
    assert wording_versions.overrides(db) == GOOD
