"""API test fixtures: a live token and its Authorization header."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from tests.api import factories


@pytest.fixture
def token(db: Session) -> str:
    return factories.token(db, "erp")


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
