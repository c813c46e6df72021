"""`GET /policies/active`: the dunning policy in force (admins edit it in the console).

Same rule as `relance.policy.service`: the active stored version, else the bundled seed
(reported as version 0, source `seed`).
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from relance.api import views
from relance.api.auth import Caller
from relance.api.schemas import PolicyOut
from relance.db.models import VersionedDocument
from relance.policy import service as policy_service
from relance.web.deps import DbSession

router = APIRouter(tags=["policies"])


@router.get("/policies/active", response_model=PolicyOut)
def active_policy(db: DbSession, _caller: Caller) -> PolicyOut:
    row = db.scalars(
        select(VersionedDocument)
        .where(
            VersionedDocument.kind == policy_service.POLICY_KIND,
            VersionedDocument.active.is_(True),
        )
        .order_by(VersionedDocument.version.desc(), VersionedDocument.id.desc())
        .limit(1)
    ).first()
    if row is not None:
        return views.policy(row)
    return PolicyOut(
        id=None,
        version=0,
        source="seed",
        document=policy_service.seed_document(),
        comment=None,
        created_by=None,
        created_at=None,
    )
