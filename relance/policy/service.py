"""The active dunning policy, its versions, and the payment-plan limits the assistant may agree.

Where it comes from: the active `VersionedDocument(kind="policy")` if an admin saved one, else the
bundled seed `default_policy.yml`. Saving never edits a version in place: it adds a version and
moves the `active` flag, so any earlier policy can be restored (rollback) and compared (diff).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from relance import audit
from relance.db.models import Debtor, VersionedDocument
from relance.errors import InvalidContent, NotFound
from relance.policy.schema import Policy

SEED_PATH = Path(__file__).with_name("default_policy.yml")
POLICY_KIND = "policy"


class PolicyInvalid(InvalidContent):
    """The document does not validate; `problems` lists readable `path: message` lines.
    An InvalidContent (invalid_policy, 422) with the lines as `problems`: the editors re-render them,
    and anything else that lets it through answers like every other refusal."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid_policy", "; ".join(problems), problems=problems)
        self.problems = problems


@dataclass(frozen=True)
class PlanLimits:
    """What the bot may agree without a collector for this debtor and amount."""

    max_installments: int
    max_duration_days: int
    min_first_payment_minor: int
    min_first_payment_pct: float
    min_installment_minor: int
    allowed_frequencies: tuple[str, ...]
    segment: str
    band_max_amount_minor: int | None

    def first_payment_floor(self, amount_minor: int) -> int:
        """The larger of the fixed floor and the percentage of the amount owed."""
        pct_floor = -(-amount_minor * round(self.min_first_payment_pct * 100) // 10000)
        return max(self.min_first_payment_minor, pct_floor)


@lru_cache
def seed_document() -> dict[str, Any]:
    with SEED_PATH.open(encoding="utf-8") as fh:
        loaded: dict[str, Any] = yaml.safe_load(fh)
    return loaded


def validate_document(document: dict[str, Any]) -> Policy:
    """Parse and check a policy document; raise `PolicyInvalid` with every problem found."""
    try:
        return Policy.model_validate(document)
    except ValidationError as exc:
        problems = [
            ".".join(str(p) for p in err["loc"]) + ": " + err["msg"] if err["loc"] else err["msg"]
            for err in exc.errors()
        ]
        raise PolicyInvalid(problems) from exc


@lru_cache
def seed_policy() -> Policy:
    return validate_document(seed_document())


def active_row(session: Session) -> VersionedDocument | None:
    """The stored policy version in force; None while the bundled seed is."""
    return session.scalars(
        select(VersionedDocument)
        .where(VersionedDocument.kind == POLICY_KIND, VersionedDocument.active.is_(True))
        .order_by(VersionedDocument.version.desc())
        .limit(1)
    ).first()


def active_document(session: Session | None) -> dict[str, Any]:
    row = active_row(session) if session is not None else None
    return row.document if row is not None else seed_document()


def active_policy(session: Session | None) -> Policy:
    """The policy in force. A stored version that no longer validates falls back to the seed."""
    row = active_row(session) if session is not None else None
    if row is None:
        return seed_policy()
    return _cached_policy(row.id, json.dumps(row.document, sort_keys=True))


@lru_cache(maxsize=32)
def _cached_policy(_row_id: int, document_json: str) -> Policy:
    try:
        return validate_document(json.loads(document_json))
    except PolicyInvalid:
        return seed_policy()


def active_version(session: Session) -> int:
    """0 means the bundled seed is in force."""
    row = active_row(session)
    return row.version if row is not None else 0


def list_versions(session: Session) -> list[VersionedDocument]:
    return list(
        session.scalars(
            select(VersionedDocument)
            .where(VersionedDocument.kind == POLICY_KIND)
            .order_by(VersionedDocument.version.desc())
        )
    )


def get_version(session: Session, version: int) -> VersionedDocument | None:
    return session.scalars(
        select(VersionedDocument).where(
            VersionedDocument.kind == POLICY_KIND, VersionedDocument.version == version
        )
    ).first()


def save_version(
    session: Session, document: dict[str, Any], *, actor: str, comment: str | None = None
) -> VersionedDocument:
    """Validate, store as a new version and make it active (the caller commits)."""
    validate_document(document)
    next_version = (
        session.scalar(
            select(func.max(VersionedDocument.version)).where(VersionedDocument.kind == POLICY_KIND)
        )
        or 0
    ) + 1
    _deactivate_all(session)
    row = VersionedDocument(
        kind=POLICY_KIND,
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
        action="policy.saved",
        entity=row,
        version=next_version,
        comment=comment,
    )
    return row


def rollback(session: Session, version: int, *, actor: str) -> VersionedDocument:
    """Make an earlier version active again, as a new version (history stays linear)."""
    old = get_version(session, version)
    if old is None:
        raise NotFound("version_not_found", f"policy version {version} does not exist")
    row = save_version(
        session, dict(old.document), actor=actor, comment=f"rollback to version {version}"
    )
    audit.record(session, actor=actor, action="policy.rolled_back", entity=row, to_version=version)
    return row


def diff(session: Session, old_version: int, new_version: int | None = None) -> str:
    """Unified diff (YAML) between two versions; version 0 is the seed; None is the active one."""

    def doc(version: int | None) -> dict[str, Any]:
        if version is None:
            return active_document(session)
        if version == 0:
            return seed_document()
        row = get_version(session, version)
        if row is None:
            raise NotFound("version_not_found", f"policy version {version} does not exist")
        return row.document

    def dump(document: dict[str, Any]) -> list[str]:
        text = yaml.safe_dump(document, sort_keys=True, allow_unicode=True)
        return text.splitlines(keepends=True)

    new_label = "active" if new_version is None else f"v{new_version}"
    return "".join(
        difflib.unified_diff(
            dump(doc(old_version)), dump(doc(new_version)), f"v{old_version}", new_label
        )
    )


def _deactivate_all(session: Session) -> None:
    session.execute(
        update(VersionedDocument)
        .where(VersionedDocument.kind == POLICY_KIND, VersionedDocument.active.is_(True))
        .values(active=False)
    )


def plan_limits_for(session: Session | None, debtor: Debtor, amount_minor: int) -> PlanLimits:
    """Limits for a plan on `amount_minor` owed by `debtor` under the active policy.

    Bands are matched by segment, then by amount (upper bound exclusive); the first match wins.
    """
    policy = active_policy(session)
    return limits_from_policy(policy, debtor.segment, amount_minor)


def limits_from_policy(policy: Policy, segment: str, amount_minor: int) -> PlanLimits:
    for band in policy.plan_limits:
        if band.segment not in ("*", segment):
            continue
        if band.max_amount_minor is not None and amount_minor >= band.max_amount_minor:
            continue
        return PlanLimits(
            max_installments=band.max_installments,
            max_duration_days=band.max_duration_days,
            min_first_payment_minor=band.min_first_payment_minor,
            min_first_payment_pct=band.min_first_payment_pct,
            min_installment_minor=band.min_installment_minor,
            allowed_frequencies=tuple(band.allowed_frequencies),
            segment=segment,
            band_max_amount_minor=band.max_amount_minor,
        )
    raise LookupError(f"no plan band for segment {segment!r}")  # the validator prevents this
