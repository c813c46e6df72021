"""API test fixtures: a live token and its Authorization header."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from tests.factories import make_token


@pytest.fixture
def token(db: Session) -> str:
    return make_token(db, "erp")


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
