"""Generic versioned documents (one `VersionedDocument` row per version, one active per kind).

Used for the message wording; the dunning policy has its own module with the same rules
(relance/policy/service.py). Saving never edits a version in place: it adds a version and moves
the `active` flag, so every earlier version can be compared (diff) and restored (rollback).
Readers look the active row up on each use, so a change takes effect without a restart.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

import yaml
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from relance import audit
from relance.db.models import VersionedDocument
from relance.errors import InvalidContent, NotFound

Validator = Callable[[dict[str, Any]], list[str]]


class DocumentInvalid(InvalidContent):
    """The document was refused; `problems` are readable lines for the admin.
    An InvalidContent (invalid_document, 422) with the lines as `problems`: the editors re-render them,
    and anything else that lets it through answers like every other refusal."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid_document", "; ".join(problems), problems=problems)
        self.problems = problems


def active_row(session: Session, kind: str) -> VersionedDocument | None:
    return session.scalars(
        select(VersionedDocument)
        .where(VersionedDocument.kind == kind, VersionedDocument.active.is_(True))
        .order_by(VersionedDocument.version.desc())
        .limit(1)
    ).first()


def get_version(session: Session, kind: str, version: int) -> VersionedDocument | None:
    return session.scalars(
        select(VersionedDocument).where(
            VersionedDocument.kind == kind, VersionedDocument.version == version
        )
    ).first()


def list_versions(session: Session, kind: str) -> list[VersionedDocument]:
    return list(
        session.scalars(
            select(VersionedDocument)
            .where(VersionedDocument.kind == kind)
            .order_by(VersionedDocument.version.desc())
        )
    )


def save_version(
    session: Session,
    kind: str,
    document: dict[str, Any],
    *,
    actor: str,
    comment: str | None = None,
    validate: Validator | None = None,
) -> VersionedDocument:
    """Validate, store as the next version and make it the active one (the caller commits)."""
    if not isinstance(document, dict):
        raise DocumentInvalid(["the document must be a mapping"])
    problems = validate(document) if validate else []
    if problems:
        raise DocumentInvalid(problems)
    next_version = (
        session.scalar(
            select(func.max(VersionedDocument.version)).where(VersionedDocument.kind == kind)
        )
        or 0
    ) + 1
    session.execute(
        update(VersionedDocument)
        .where(VersionedDocument.kind == kind, VersionedDocument.active.is_(True))
        .values(active=False)
    )
    row = VersionedDocument(
        kind=kind,
        version=next_version,
        document=document,
        comment=comment,
        created_by=actor,
        active=True,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"{kind}.saved",
        entity=row,
        version=next_version,
        comment=comment,
    )
    return row


def rollback(
    session: Session, kind: str, version: int, *, actor: str, validate: Validator | None = None
) -> VersionedDocument:
    """Restore an earlier version by saving it again as the newest (history stays linear)."""
    old = get_version(session, kind, version)
    if old is None:
        raise NotFound("version_not_found", f"{kind} version {version} does not exist")
    row = save_version(
        session,
        kind,
        dict(old.document),
        actor=actor,
        comment=f"rollback to version {version}",
        validate=validate,
    )
    audit.record(session, actor=actor, action=f"{kind}.rolled_back", entity=row, to_version=version)
    return row


def dump_yaml(document: dict[str, Any]) -> str:
    # A wide line limit keeps every message template on one line: readable, and a clean diff.
    return yaml.safe_dump(document, sort_keys=True, allow_unicode=True, width=4096)


def unified_diff(old: dict[str, Any], new: dict[str, Any], old_label: str, new_label: str) -> str:
    """Line diff of the YAML dumps: what an admin reads to see what changed."""
    return "".join(
        difflib.unified_diff(
            dump_yaml(old).splitlines(keepends=True),
            dump_yaml(new).splitlines(keepends=True),
            old_label,
            new_label,
        )
    )
