"""Demo console accounts for `relance run` in development (the launcher prints them).

Never created in production: the passwords are public.
"""

from __future__ import annotations

from relance.auth.users import create_user, find_user
from relance.db.session import session_scope
from relance.settings import get_settings

DEMO_LOGINS: tuple[tuple[str, str, str], ...] = (
    ("admin@relance.local", "relance-admin-demo", "admin"),
    ("collector@relance.local", "relance-collector-demo", "collector"),
)


def ensure_demo_users() -> int:
    """Create the missing demo accounts; returns how many were created."""
    if get_settings().environment == "production":
        return 0
    created = 0
    with session_scope() as session:
        for email, password, role in DEMO_LOGINS:
            if find_user(session, email) is None:
                create_user(
                    session, email, password, role=role,
                    display_name="Demo " + role, actor="demo",
                )
                created += 1
    return created
