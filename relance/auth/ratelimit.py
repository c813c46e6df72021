"""Login throttling: per client address + e-mail, and per account with exponential backoff.

Per client + e-mail: failures are kept in the audit trail (they are evidence anyway), keyed by a
hash of IP + e-mail, so the limit holds across api replicas and restarts without a separate
store. That alone let an attacker who changes address (or forges `X-Forwarded-For`) guess one
account's password without end, so each account (known or not: the answer must not tell) also
has a counter in `login_throttles`: after `ACCOUNT_FREE_FAILURES` failures, each next attempt
must wait twice as long as the last (`ACCOUNT_BASE_DELAY` doubling, at most `ACCOUNT_MAX_DELAY`).
Backoff rather than a lock-out: the right password works again after at most 15 minutes, so an
attacker cannot keep a colleague out for good, and guessing is slowed to a few tries an hour.
A successful login clears the account's counter.

Per client address alone (`per_address`): neither count stops one address from trying one
common password on every staff e-mail in turn (password spraying: one failure per pair and per
account). Every failed login also counts against the client's address (an IPv6 client per /64,
kept as a keyed hash, `relance.address_limit`); at `console_address_max_failures` within
`console_address_window_minutes` the address is refused before any other check, whatever the
e-mail, and a success clears none of its failures.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from relance import address_limit, audit_counts
from relance.address_limit import AddressLimit
from relance.db.base import utcnow
from relance.db.models import LoginThrottle
from relance.settings import Settings, get_settings

MAX_FAILURES = 5
WINDOW = timedelta(minutes=15)
FAILED_ACTION = "auth.login_failed"
_ENTITY = "login_attempt"
ADDRESS_FAILED = "auth.client_failed"
ADDRESS_THROTTLED = "auth.client_throttled"

ACCOUNT_FREE_FAILURES = 5
ACCOUNT_BASE_DELAY = timedelta(seconds=30)
ACCOUNT_MAX_DELAY = timedelta(minutes=15)
ACCOUNT_MEMORY = timedelta(hours=24)  # a counter quiet this long starts again from zero


def attempt_key(ip: str, email: str) -> str:
    return hashlib.sha256(f"{ip}|{email.strip().lower()}".encode()).hexdigest()


def account_key(email: str) -> str:
    return hashlib.sha256(f"account|{email.strip().lower()}".encode()).hexdigest()


def per_address(settings: Settings) -> AddressLimit:
    """The console login's limit per client address under the current settings."""
    return AddressLimit(
        context="console-client",
        entity_type="console_client",
        failed=ADDRESS_FAILED,
        throttled=ADDRESS_THROTTLED,
        max_failures=settings.console_address_max_failures,
        window=timedelta(minutes=settings.console_address_window_minutes),
        secret_key=settings.secret_key,
    )


def recent_failures(session: Session, ip: str, email: str) -> int:
    return audit_counts.count_since(
        session,
        action=FAILED_ACTION,
        entity_type=_ENTITY,
        key=attempt_key(ip, email),
        since=utcnow() - WINDOW,
    )


def account_delay(failures: int) -> timedelta:
    """How long after the last failure the next attempt on the account must wait."""
    if failures < ACCOUNT_FREE_FAILURES:
        return timedelta(0)
    doublings: int = 2 ** (failures - ACCOUNT_FREE_FAILURES)  # failures >= free: a whole number
    return min(ACCOUNT_BASE_DELAY * doublings, ACCOUNT_MAX_DELAY)


def account_retry_after(session: Session, email: str) -> timedelta:
    """Time left before the account accepts another attempt (zero: go ahead)."""
    row = session.get(LoginThrottle, account_key(email))
    if row is None:
        return timedelta(0)
    left = row.last_failure_at + account_delay(row.failures) - utcnow()
    return max(left, timedelta(0))


def retry_after(session: Session, ip: str, email: str) -> timedelta:
    """Zero when an attempt may be checked; otherwise how long to wait."""
    if recent_failures(session, ip, email) >= MAX_FAILURES:
        return WINDOW
    return account_retry_after(session, email)


def address_retry_after(session: Session, ip: str) -> int:
    """Zero when the client's address may try; otherwise the seconds it must wait, and the
    refusal is recorded (under the address's keyed hash, never the address)."""
    return address_limit.refusal(session, per_address(get_settings()), ip)


def record_failure(session: Session, ip: str, email: str) -> None:
    """A failed login: counted for the address + e-mail pair, the account and the address."""
    address_limit.record_failure(session, per_address(get_settings()), ip)
    audit_counts.record_counted(
        session,
        action=FAILED_ACTION,
        entity_type=_ENTITY,
        key=attempt_key(ip, email),
        ip=ip,
        email=email[:254],
    )
    now = utcnow()
    row = session.get(LoginThrottle, account_key(email))
    if row is None:
        session.add(LoginThrottle(account_key=account_key(email), failures=1, last_failure_at=now))
    else:
        row.failures = 1 if now - row.last_failure_at > ACCOUNT_MEMORY else row.failures + 1
        row.last_failure_at = now
    session.flush()


def record_success(session: Session, email: str) -> None:
    session.execute(delete(LoginThrottle).where(LoginThrottle.account_key == account_key(email)))
