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
OVERRIDE_FAILED = "wording.override_failed"  # audit action: an edited response failed to render

Templates = dict[str, list[dict[str, Any]]]


class ActiveTemplates(dict[str, list[dict[str, Any]]]):
    """The templates in use, knowing which responses are the admin's and what ships by default.

    The renderer uses this to answer with the shipped default, loudly, when an edited response
    fails at render time (see `relance.nlg.renderer.render`).
    """

    def __init__(
        self,
        templates: Templates,
        *,
        bundled: Templates,
        overridden: frozenset[str],
        session: Session | None,
    ) -> None:
        super().__init__(templates)
        self.bundled = bundled
        self.overridden = overridden
        self._session = session

    def report_override_failure(self, name: str, language: str, problem: str) -> None:
        """Audit the failure: the console's wording page lists the responses that failed."""
        if self._session is None:
            return
        from relance import audit

        audit.record(
            self._session,
            actor="system",
            action=OVERRIDE_FAILED,
            response=name,
            language=language,
            problem=problem[:500],
        )


@lru_cache
def bundled_templates() -> Templates:
    with BUNDLED_TEMPLATES.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def active_templates(session: Session | None) -> Templates:
    """The admin's active version if any, the bundled defaults otherwise.

    Responses missing from the admin's copy fall back to the bundled ones, so adding a response in
    a release never leaves the bot speechless.
    """
    bundled = bundled_templates()
    doc = None
    if session is not None:
        doc = session.scalars(
            select(VersionedDocument.document)
            .where(VersionedDocument.kind == WORDING_KIND, VersionedDocument.active.is_(True))
            .order_by(VersionedDocument.version.desc())
            .limit(1)
        ).first()
    overrides = doc or {}
    return ActiveTemplates(
        {**bundled, **overrides},
        bundled=bundled,
        overridden=frozenset(n for n in overrides if n in bundled),
        session=session,
    )
