"""The admins' wording edits as versions: validate, save, reset, restore, and what failed since.

Wording overrides are a versioned document (kind `wording`) layered over the bundled templates.
Every writer — the console's wording editor and rollback, an experiment's "promote the winner" —
goes through `save` here, so a version is validated one way whoever saves it: rendered with the
values the application passes (nothing that fails when a debtor writes HELP can be saved),
outbound texts carry the opt-out notice, and every template the active policy's stages name exists.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from relance import versioning
from relance.db.models import AuditEvent, VersionedDocument
from relance.errors import BadInput, NotFound
from relance.nlg import validation
from relance.nlg.templates_store import OVERRIDE_FAILED, WORDING_KIND, bundled_templates
from relance.policy import service as policy_service


def overrides(session: Session) -> dict[str, Any]:
    """The active version's overrides (a copy the caller may edit), or none."""
    row = versioning.active_row(session, WORDING_KIND)
    return dict(row.document) if row is not None else {}


def problems(session: Session, document: dict[str, Any]) -> list[str]:
    """What is wrong with `document` as the bot would see it (bundled + overrides) under the
    active policy; empty when it can be saved."""
    merged = {**bundled_templates(), **document}
    policy_document = policy_service.active_document(session)
    found = validation.wording_problems(
        merged, document, stage_templates=validation.stage_templates_of(policy_document)
    )
    found += [
        p for p in validation.missing_stage_templates(policy_document, merged) if p not in found
    ]
    return found


def save(
    session: Session, document: dict[str, Any], *, actor: str, comment: str
) -> VersionedDocument:
    """Validate and save `document` as the new active version (audited by versioning).

    Raises BadInput("wording_invalid") with the problems, and saves nothing, when it is refused.
    """
    refused = problems(session, document)
    if refused:
        raise BadInput("wording_invalid", "; ".join(refused), problems=refused)
    return versioning.save_version(session, WORDING_KIND, document, actor=actor, comment=comment)


def reset(session: Session, name: str, *, actor: str, comment: str) -> VersionedDocument | None:
    """Drop the override of response `name` (back to the shipped default); None if there was none."""
    document = overrides(session)
    if document.pop(name, None) is None:
        return None
    return save(session, document, actor=actor, comment=comment or f"reset {name} to default")


def restore(session: Session, version: int, *, actor: str) -> VersionedDocument:
    """Make an earlier version active again (saved anew: history stays linear), if still valid."""
    try:
        return versioning.rollback(
            session,
            WORDING_KIND,
            version,
            actor=actor,
            validate=lambda document: problems(session, document),
        )
    except versioning.DocumentInvalid as exc:
        raise BadInput("wording_invalid", "; ".join(exc.problems), problems=exc.problems) from exc


def document(session: Session, version: int | None) -> dict[str, Any]:
    """The overrides of `version` (None: the active one; 0: none, the shipped wording)."""
    if version is None:
        return overrides(session)
    if version == 0:
        return {}
    row = versioning.get_version(session, WORDING_KIND, version)
    if row is None:
        raise NotFound("version_not_found", f"wording version {version} does not exist")
    return dict(row.document)


def failed_overrides(session: Session) -> list[str]:
    """Edited responses that failed at render time since the active version was saved (the
    shipped default was sent instead, see relance/nlg/renderer.render): the admin must fix them."""
    row = versioning.active_row(session, WORDING_KIND)
    if row is None:
        return []
    events = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == OVERRIDE_FAILED, AuditEvent.at >= row.created_at
        )
    )
    found: dict[str, str] = {}
    for event in events:
        details = event.details or {}
        name = str(details.get("response"))
        if name in (row.document or {}):
            found.setdefault(name, f"{name} ({details.get('language')}): {details.get('problem')}")
    return sorted(found.values())
