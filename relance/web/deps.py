"""Request-scoped dependencies. The session commits when the endpoint returns without error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session

from relance.db import session as db_session
from relance.settings import Settings, get_settings


def get_db() -> Iterator[Session]:
    """Unit of work per request: commit at the boundary, roll back on any exception."""
    # Looked up on the module at call time so tests can swap the factory (tests/conftest.py).
    session = db_session.get_sessionmaker()()
    try:
        yield session
        session.commit()
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()


# scope="function": the commit happens before the response is sent, so a client that sees
# 200 knows the work is durable (webhook providers rely on this).
DbSession = Annotated[Session, Depends(get_db, scope="function")]
AppSettings = Annotated[Settings, Depends(get_settings)]
