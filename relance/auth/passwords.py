"""Password hashing with Argon2id (argon2-cffi defaults follow the RFC 9106 recommendations)."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from relance.errors import InvalidContent

MIN_PASSWORD_LENGTH = 10


@lru_cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


def hash_password(password: str) -> str:
    """Refuses a short password (`InvalidContent("weak_password")`) before hashing, so it never
    reaches the database."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidContent(
            "weak_password", f"password must have at least {MIN_PASSWORD_LENGTH} characters"
        )
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Constant-time check; a malformed stored hash counts as a mismatch, never an error."""
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the parameters changed since this hash was made (upgrade on next login)."""
    try:
        return _hasher().check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


# A valid hash of a random string, checked when the e-mail is unknown so the response time does
# not reveal which accounts exist.
@lru_cache
def dummy_hash() -> str:
    return _hasher().hash("relance-no-such-user-0000")
