"""Where the wording comes from: the active admin-edited version in the DB, else the bundled YAML.

The bundled file `templates/responses.yml` is the seed; admins edit a copy stored as a
`VersionedDocument(kind="wording")`. Rasa asks the api for text at every turn, so an edit takes
effect on the next message without retraining.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from relance.db.models import VersionedDocument

BUNDLED_TEMPLATES = Path(__file__).parent / "templates" / "responses.yml"
WORDING_KIND = "wording"

Templates = dict[str, list[dict[str, Any]]]


@lru_cache
def bundled_templates() -> Templates:
    with BUNDLED_TEMPLATES.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def active_templates(session: Session | None) -> Templates:
    """The admin's active version if any, the bundled defaults otherwise.

    Responses missing from the admin's copy fall back to the bundled ones, so adding a response in
    a release never leaves the bot speechless.
    """
    templates = dict(bundled_templates())
    if session is None:
        return templates
    doc = session.scalars(
        select(VersionedDocument.document)
        .where(VersionedDocument.kind == WORDING_KIND, VersionedDocument.active.is_(True))
        .order_by(VersionedDocument.version.desc())
        .limit(1)
    ).first()
    if doc:
        templates.update(doc)
    return templates
