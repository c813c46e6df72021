"""Demo console accounts for `relance run` in development (the launcher prints them).

The passwords are random per installation, kept in `var/demo-logins.json` (never in the repo),
so a demo left running on a reachable machine is not open to anyone who read the source.
Never created in production.
"""

from __future__ import annotations

import json
import secrets

from relance.auth.users import create_user, find_user
from relance.db.session import session_scope
from relance.settings import get_settings

DEMO_ACCOUNTS: tuple[tuple[str, str], ...] = (
    ("admin@relance.local", "admin"),
    ("collector@relance.local", "collector"),
)


def demo_logins() -> list[tuple[str, str, str]]:
    """(email, password, role) for each demo account; passwords generated on first use."""
    path = get_settings().var_dir / "demo-logins.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if any(email not in stored for email, _role in DEMO_ACCOUNTS):
        for email, _role in DEMO_ACCOUNTS:
            stored.setdefault(email, secrets.token_urlsafe(12))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(stored, indent=2))
        path.chmod(0o600)
    return [(email, stored[email], role) for email, role in DEMO_ACCOUNTS]


def ensure_demo_users() -> int:
    """Create the missing demo accounts; returns how many were created."""
    if get_settings().environment == "production":
        return 0
    created = 0
    with session_scope() as session:
        for email, password, role in demo_logins():
            if find_user(session, email) is None:
                create_user(
                    session,
                    email,
                    password,
                    role=role,
                    display_name="Demo " + role,
                    actor="demo",
                )
                created += 1
    return created
