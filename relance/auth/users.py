"""Console users: create, authenticate, change password, deactivate. Callers commit."""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance import audit
from relance.auth import ratelimit
from relance.auth.passwords import dummy_hash, hash_password, needs_rehash, verify_password
from relance.auth.sessions import end_user_sessions
from relance.db.models import User
from relance.db.models.enums import Role
from relance.errors import Conflict, InvalidContent

ROLES = tuple(r.value for r in Role)


@dataclass(frozen=True)
class LoginResult:
    """`throttled`: refused unchecked for `retry_after_seconds`; `address_limited` says the
    client's address (not the account or the pair) reached its limit, which the page words
    differently: another address, or the colleague's own, still works."""

    user: User | None
    throttled: bool = False
    retry_after_seconds: int = 0
    address_limited: bool = False


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidContent("unknown_role", f"role must be one of {', '.join(ROLES)}")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def find_user(session: Session, email: str) -> User | None:
    return session.scalars(
        select(User).where(func.lower(User.email) == normalise_email(email))
    ).first()


def create_user(
    session: Session,
    email: str,
    password: str,
    *,
    role: str = Role.COLLECTOR,
    display_name: str | None = None,
    actor: str = "system",
) -> User:
    """Refused before anything is stored: `InvalidContent("invalid_email" | "unknown_role" |
    "weak_password")`, or `Conflict("email_taken")` when the e-mail already has an account."""
    email = normalise_email(email)
    if "@" not in email or len(email) > 254:
        raise InvalidContent("invalid_email", "a valid e-mail address is required")
    _check_role(role)
    if find_user(session, email) is not None:
        raise Conflict("email_taken", f"a user with e-mail {email} already exists")
    password_hash = hash_password(password)
    user = User(
        email=email,
        display_name=(display_name or email.split("@")[0])[:120],
        password_hash=password_hash,
        role=role,
        active=True,
    )
    session.add(user)
    session.flush()
    audit.record(session, actor=actor, action="user.created", entity=user, email=email, role=role)
    return user


def authenticate(session: Session, email: str, password: str, ip: str) -> LoginResult:
    """Check the credentials under the per-address, per IP + e-mail and per-account throttles;
    failures are recorded. While throttled the password is not even checked, so it reveals
    nothing. The address comes first: over its limit, nothing about the e-mail is looked up,
    so the refusal is the same for a real account, an unknown one and the right password."""
    address_wait = ratelimit.address_retry_after(session, ip)
    if address_wait:
        return LoginResult(
            None, throttled=True, retry_after_seconds=address_wait, address_limited=True
        )
    wait = ratelimit.retry_after(session, ip, email)
    if wait:
        return LoginResult(None, throttled=True, retry_after_seconds=ceil(wait.total_seconds()))
    user = find_user(session, email)
    if user is None or not user.active:
        verify_password(dummy_hash(), password)  # same cost as a real check
        ratelimit.record_failure(session, ip, email)
        return LoginResult(None)
    if not verify_password(user.password_hash, password):
        ratelimit.record_failure(session, ip, email)
        return LoginResult(None)
    ratelimit.record_success(session, email)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    audit.record(session, actor=f"user:{user.email}", action="auth.login", entity=user, ip=ip)
    return LoginResult(user)


def set_password(session: Session, user: User, password: str, *, actor: str = "system") -> None:
    user.password_hash = hash_password(password)  # InvalidContent("weak_password")
    end_user_sessions(session, user.id, "password")
    audit.record(session, actor=actor, action="user.password_changed", entity=user)


def set_role(session: Session, user: User, role: str, *, actor: str = "system") -> None:
    _check_role(role)
    old, user.role = user.role, role
    audit.record(session, actor=actor, action="user.role_changed", entity=user, old=old, new=role)


def set_active(session: Session, user: User, active: bool, *, actor: str = "system") -> None:
    user.active = active
    if not active:
        end_user_sessions(session, user.id, "deactivated")
    audit.record(
        session, actor=actor, action="user.activated" if active else "user.deactivated", entity=user
    )


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))
