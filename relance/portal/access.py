"""Personal portal links and the identity check that must pass before any debt detail is shown.

A link follows the payment-link token discipline (`relance.secret_links`: 256-bit token in the
URL only, SHA-256 at rest), is bound to one debtor, expires after `portal_link_ttl_days` and can
be revoked. Holding the link is not enough: the person must also give the second factor the
assistant asks for (`settings.identity_check`: postcode or customer number), checked by the very
same `relance.identity.service.check`. Wrong answers are counted on the link; at
`identity_max_attempts` the link locks for `LOCK_DURATION`, whatever is typed next.

Our own messages (e-mail reminders, the formal notice letter) carry `message_link`: one link
per debtor, printed again in every message while it is valid, not a new bearer link per message
(a dozen live links for one debtor would be a dozen ways in, and revoking "the" link would not
end them). Its token is HMAC-SHA256(secret_key, seed) with a random seed on the row, so it can
be rebuilt for the next message; the table still holds only the token's SHA-256 and the seed,
neither of which opens anything without the server's secret. Revoked or expired, the next
message gets a new one; a changed `secret_key` also gives a new one (the old one no longer
matches its hash and is not printed again).

Without a link (letter, website), `sign_in` takes the customer number and the second factor. Its
answer never tells whether the customer number exists: an unknown one and a wrong factor get the
same refusal and count towards the same lock, kept per customer number typed (hashed) in the
audit trail, so nobody can probe which numbers are ours.

Both checks (`sign_in`, `check_identity`) also count every failure against the client's address
and refuse an address over its limit before anything else (`relance.portal.client_limit`):
the per-number and per-debtor limits do not stop one client from trying a few postcodes on
every customer number.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance import audit, audit_counts
from relance.db.base import utcnow
from relance.db.models import Debtor
from relance.identity import service as identity
from relance.nlu_normalise import digits_only
from relance.portal import client_limit
from relance.portal.models import PortalAccess
from relance.secret_links import hash_token, new_token, plausible
from relance.settings import Settings, get_settings

LOCK_DURATION = timedelta(minutes=30)
# A message link is printed again only while it has this much life left; after, a new one.
MESSAGE_LINK_MIN_REMAINING = timedelta(days=10)
SIGN_IN_FAILED = "portal.sign_in_failed"
_SIGN_IN_ENTITY = "portal_sign_in"


class AccessState(StrEnum):
    OPEN = "open"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class IdentityOutcome:
    """`attempts_left` is 0 and `locked` True once the limit is reached."""

    verified: bool
    locked: bool
    attempts_left: int
    no_answer: bool = False


def portal_url(token: str, settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    return f"{settings.public_base_url.rstrip('/')}/portal/{token}"


def issue_access(
    session: Session, debtor: Debtor, *, actor: str = "system"
) -> tuple[PortalAccess, str]:
    """A new personal link for `debtor`; returns (row, url). The token is never stored."""
    settings = get_settings()
    token = new_token()
    access = PortalAccess(
        token_hash=hash_token(token),
        debtor_id=debtor.id,
        expires_at=utcnow() + timedelta(days=settings.portal_link_ttl_days),
    )
    session.add(access)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="portal.link_issued",
        entity=access,
        debtor_id=debtor.id,
        expires_at=access.expires_at,
    )
    return access, portal_url(token, settings)


def _message_token(seed: str, settings: Settings) -> str:
    digest = hmac.new(
        settings.secret_key.encode(), f"portal-message-link|{seed}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()  # 43 characters, as new_token


def _min_remaining(settings: Settings) -> timedelta:
    """A link printed again must outlive the message's own deadline (the letter gives 8 days)."""
    return min(MESSAGE_LINK_MIN_REMAINING, timedelta(days=settings.portal_link_ttl_days) / 2)


def message_link(session: Session, debtor: Debtor) -> str:
    """The debtor's portal URL for a message we send: the live one printed before (with at
    least `MESSAGE_LINK_MIN_REMAINING` to run), else a new one.

    Never stored in clear: rebuilt from the row's seed (see the module docstring). A link whose
    rebuilt token no longer matches its hash (the secret changed) is left alone, not reused.
    """
    settings = get_settings()
    candidates = session.scalars(
        select(PortalAccess)
        .where(
            PortalAccess.debtor_id == debtor.id,
            PortalAccess.seed.is_not(None),
            PortalAccess.revoked_at.is_(None),
            PortalAccess.expires_at > utcnow() + _min_remaining(settings),
        )
        .order_by(PortalAccess.expires_at.desc(), PortalAccess.id.desc())
    )
    for access in candidates:
        token = _message_token(access.seed or "", settings)
        if hmac.compare_digest(hash_token(token), access.token_hash):
            return portal_url(token, settings)
    seed = new_token()
    token = _message_token(seed, settings)
    access = PortalAccess(
        token_hash=hash_token(token),
        debtor_id=debtor.id,
        expires_at=utcnow() + timedelta(days=settings.portal_link_ttl_days),
        seed=seed,
    )
    session.add(access)
    session.flush()
    audit.record(
        session,
        actor="system",
        action="portal.link_issued",
        entity=access,
        debtor_id=debtor.id,
        expires_at=access.expires_at,
        for_messages=True,
    )
    return portal_url(token, settings)


def find_access(session: Session, token: str | None) -> PortalAccess | None:
    if token is None or not plausible(token):
        return None
    return session.scalars(
        select(PortalAccess).where(PortalAccess.token_hash == hash_token(token))
    ).first()


def access_state(access: PortalAccess | None, now: datetime | None = None) -> AccessState:
    if access is None:
        return AccessState.UNKNOWN
    if access.revoked_at is not None:
        return AccessState.REVOKED
    if (now or utcnow()) >= access.expires_at:
        return AccessState.EXPIRED
    return AccessState.OPEN


def live_accesses(session: Session, debtor_id: int) -> list[PortalAccess]:
    """The debtor's links that still work (not revoked, not expired)."""
    return list(
        session.scalars(
            select(PortalAccess).where(
                PortalAccess.debtor_id == debtor_id,
                PortalAccess.revoked_at.is_(None),
                PortalAccess.expires_at > utcnow(),
            )
        )
    )


def revoke(session: Session, access: PortalAccess, *, actor: str) -> bool:
    """End the link and every browser session opened with it. False if it was already revoked."""
    if access.revoked_at is not None:
        return False
    access.revoked_at = utcnow()
    access.session_epoch += 1
    audit.record(
        session,
        actor=actor,
        action="portal.link_revoked",
        entity=access,
        debtor_id=access.debtor_id,
    )
    return True


def is_locked(access: PortalAccess, now: datetime | None = None) -> bool:
    return access.locked_until is not None and (now or utcnow()) < access.locked_until


def check_identity(
    session: Session, access: PortalAccess, answer: str, *, language: str, client: str
) -> IdentityOutcome:
    """The assistant's identity check, with the attempts counted on the link and against the
    client's address (`client`); an address over its limit gets `TooManyRequests` before any
    check."""
    client_limit.check(session, client, where="link", debtor_id=access.debtor_id)
    outcome = _check_link_identity(session, access, answer, language=language)
    if not outcome.verified and not outcome.no_answer:
        client_limit.record_failure(session, client, where="link")
    return outcome


def _check_link_identity(
    session: Session, access: PortalAccess, answer: str, *, language: str
) -> IdentityOutcome:
    settings = get_settings()
    limit = settings.identity_max_attempts
    now = utcnow()
    if is_locked(access, now):
        return IdentityOutcome(verified=False, locked=True, attempts_left=0)
    if identity.daily_limit_reached(session, access.debtor_id, limit):
        access.locked_until = now + LOCK_DURATION  # the page says so, and asks again later
        return IdentityOutcome(verified=False, locked=True, attempts_left=0)
    if access.locked_until is not None:  # the lock has run out: a fresh set of attempts
        access.locked_until = None
        access.failed_attempts = 0
    debtor = session.get(Debtor, access.debtor_id)
    if debtor is None:
        return IdentityOutcome(verified=False, locked=False, attempts_left=0)
    result = identity.check(
        debtor,
        answer,
        method=settings.identity_check,
        attempts_left=limit - access.failed_attempts,
        language=language,
    )
    if result.verified:
        access.failed_attempts = 0
        access.verified_at = now
        audit.record(
            session,
            actor="debtor",
            action="portal.identity_verified",
            entity=access,
            debtor_id=debtor.id,
        )
        return IdentityOutcome(verified=True, locked=False, attempts_left=limit)
    if result.attempts == 0:
        return IdentityOutcome(
            verified=False,
            locked=False,
            attempts_left=limit - access.failed_attempts,
            no_answer=True,
        )
    access.failed_attempts = min(access.failed_attempts + result.attempts, limit)
    locked = access.failed_attempts >= limit
    if locked:
        access.locked_until = now + LOCK_DURATION
    audit.record(
        session,
        actor="debtor",
        action="portal.identity_failed",
        entity=access,
        debtor_id=debtor.id,
        attempts=access.failed_attempts,
        locked=locked,
    )
    return IdentityOutcome(
        verified=False, locked=locked, attempts_left=limit - access.failed_attempts
    )


def _sign_in_key(customer_number: str) -> str:
    normalised = digits_only(customer_number.strip()) or customer_number.strip().upper()
    return hashlib.sha256(f"portal|{normalised}".encode()).hexdigest()


def _recent_sign_in_failures(session: Session, key: str, now: datetime) -> int:
    return audit_counts.count_since(
        session,
        action=SIGN_IN_FAILED,
        entity_type=_SIGN_IN_ENTITY,
        key=key,
        since=now - LOCK_DURATION,
    )


def _find_by_customer_number(session: Session, customer_number: str) -> Debtor | None:
    typed = digits_only(customer_number.strip())
    if len(typed) < identity.MIN_CANDIDATE_LENGTH:
        return None
    exact = session.scalars(
        select(Debtor).where(func.upper(Debtor.customer_number) == customer_number.strip().upper())
    ).first()
    if exact is not None:
        return exact
    # "104233" for "C-104233": the same leniency as the assistant's identity check.
    for candidate in session.scalars(
        select(Debtor).where(Debtor.customer_number.like(f"%{typed[-6:]}%")).limit(20)
    ):
        expected = digits_only(candidate.customer_number)
        if expected and typed in {expected, expected.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")}:
            return candidate
    return None


def sign_in(
    session: Session, customer_number: str, answer: str, *, language: str, client: str
) -> tuple[PortalAccess, str] | None:
    """A new personal link when the customer number and the second factor match, else None.

    Unknown number, wrong factor and locked number all return None after the same work, and
    every failure is counted against the number typed, known or not, and against the client's
    address (`client`). An address over its limit gets `TooManyRequests` before the number is
    even looked up: the same refusal whether it exists or not.
    """
    client_limit.check(session, client, where="sign_in")
    found = _sign_in(session, customer_number, answer, language=language)
    if found is None:
        client_limit.record_failure(session, client, where="sign_in")
    return found


def _sign_in(
    session: Session, customer_number: str, answer: str, *, language: str
) -> tuple[PortalAccess, str] | None:
    settings = get_settings()
    now = utcnow()
    key = _sign_in_key(customer_number)
    if _recent_sign_in_failures(session, key, now) >= settings.identity_max_attempts:
        _record_sign_in_failure(session, key, locked=True)
        return None
    debtor = _find_by_customer_number(session, customer_number)
    verified = False
    # Asked for an unknown number too (id 0 is no row): the same work either way.
    spent = identity.daily_limit_reached(
        session, debtor.id if debtor is not None else 0, settings.identity_max_attempts
    )
    if debtor is not None:
        verified = not spent and (
            identity.check(
                debtor, answer, method="postcode", attempts_left=1, language=language
            ).verified
        )
    if not verified or debtor is None:
        _record_sign_in_failure(
            session, key, locked=False, debtor_id=debtor.id if debtor is not None else None
        )
        return None
    access, url = issue_access(session, debtor, actor="debtor")
    access.verified_at = now
    audit.record(
        session,
        actor="debtor",
        action="portal.identity_verified",
        entity=access,
        debtor_id=debtor.id,
        via="sign_in",
    )
    return access, url


def _record_sign_in_failure(
    session: Session, key: str, *, locked: bool, debtor_id: int | None = None
) -> None:
    """`debtor_id` when the number typed is a debtor's: the audit log only (the visitor gets the
    same answer either way), so the failure counts towards that debtor's daily limit."""
    audit_counts.record_counted(
        session,
        action=SIGN_IN_FAILED,
        entity_type=_SIGN_IN_ENTITY,
        key=key,
        debtor_id=debtor_id,
        locked=locked,
    )
