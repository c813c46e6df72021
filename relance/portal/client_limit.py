"""A limit per client address on the portal's identity checks that need no account.

Wrong answers are counted per customer number typed (`relance.portal.access.sign_in`), per link
and per debtor over a day (`relance.identity.service.daily_limit_reached`): each one stops the
guessing of *one* debtor. None of them stopped one client from trying three postcodes on each of
thousands of customer numbers, every day, which finds some and opens those debtors' accounts.
So every failed answer from a client also counts against its address, and at
`portal_address_max_failures` failures within `portal_address_window_minutes` the address is
refused before anything is looked up: no identity check, no customer number searched, the same
refusal whatever is typed, and the refusal written to the audit trail. How the address is
counted (IPv6 per /64, a keyed hash in the trail, a refusal adds nothing and a success clears
nothing) is `relance.address_limit`, which the console's login shares.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from relance import address_limit
from relance.address_limit import AddressLimit
from relance.errors import TooManyRequests
from relance.settings import Settings, get_settings

FAILED = "portal.client_failed"
THROTTLED = "portal.client_throttled"


def limit(settings: Settings) -> AddressLimit:
    """The portal's limit under the current settings."""
    return AddressLimit(
        context="portal-client",
        entity_type="portal_client",
        failed=FAILED,
        throttled=THROTTLED,
        max_failures=settings.portal_address_max_failures,
        window=timedelta(minutes=settings.portal_address_window_minutes),
        secret_key=settings.secret_key,
    )


def check(session: Session, client: str, *, where: str, debtor_id: int | None = None) -> None:
    """Raise `TooManyRequests` (after recording the refusal) when `client` reached the limit.

    `where` names the form ("sign_in", "link"); `debtor_id` is the link's debtor, whose trail
    then shows that someone was refused on their link (a sign-in names nobody: nothing typed is
    looked up).
    """
    retry_after = address_limit.refusal(
        session, limit(get_settings()), client, debtor_id=debtor_id, where=where
    )
    if retry_after:
        raise TooManyRequests(
            "too_many_attempts",
            "Too many failed attempts from this address; try again later",
            retry_after_seconds=retry_after,
        )


def record_failure(session: Session, client: str, *, where: str) -> None:
    """One wrong (or refused) answer from `client`, counted towards its limit."""
    address_limit.record_failure(session, limit(get_settings()), client, where=where)
