"""A limit per client address on the portal's identity checks that need no account.

Wrong answers are counted per customer number typed (`relance.portal.access.sign_in`), per link
and per debtor over a day (`relance.identity.service.daily_limit_reached`): each one stops the
guessing of *one* debtor. None of them stopped one client from trying three postcodes on each of
thousands of customer numbers, every day, which finds some and opens those debtors' accounts.
So every failed answer from a client also counts against its address (the edge finds it with
`relance.web.client_ip`, believing `X-Forwarded-For` only from `TRUSTED_PROXIES`), and at
`portal_address_max_failures` failures within `portal_address_window_minutes` the address is
refused before anything is looked up: no identity check, no customer number searched, the same
refusal whatever is typed, and the refusal written to the audit trail.

- **IPv6**: a client is usually given a whole /64 and can take any address in it, so an IPv6
  address counts for its /64 (an IPv4-mapped one as the IPv4 address).
- **Privacy**: the audit trail keeps no address, only HMAC-SHA256(`secret_key`, the network).
  A plain hash would give the address back to anyone trying the 2³² IPv4 addresses.
- **A refusal is not a failure**: it adds nothing to the count, so the address gets attempts
  back as its failures age out of the window, whatever it sends meanwhile. A success clears
  nothing either: a guesser who knows one real number and postcode (their own) would otherwise
  reset the count at will.
- **Several processes** share the count through the database; it is read, then written without
  a lock, so requests racing each other can go a few failures past the limit, as the per-number
  count can.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from datetime import timedelta
from math import ceil

from sqlalchemy.orm import Session

from relance.db.base import utcnow
from relance.errors import TooManyRequests
from relance.portal import repository
from relance.settings import Settings, get_settings

FAILED = "portal.client_failed"
THROTTLED = "portal.client_throttled"
_ENTITY = "portal_client"
IPV6_PREFIX = 64


def address_group(address: str) -> str:
    """What one client holds: an IPv4 address, the /64 of an IPv6 one. Anything that is not an
    address (no peer, a proxy's odd header) counts as written."""
    text = address.strip()
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])  # a zone ("fe80::1%eth0") is no client
    except ValueError:
        return text.lower()
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)


def client_key(address: str, settings: Settings) -> str:
    """The address as the audit trail keeps it (64 hex characters, `entity_id`'s width)."""
    message = f"portal-client|{address_group(address)}".encode()
    return hmac.new(settings.secret_key.encode(), message, hashlib.sha256).hexdigest()


def check(session: Session, client: str, *, where: str, debtor_id: int | None = None) -> None:
    """Raise `TooManyRequests` (after recording the refusal) when `client` reached the limit.

    `where` names the form ("sign_in", "link"); `debtor_id` is the link's debtor, whose trail
    then shows that someone was refused on their link (a sign-in names nobody: nothing typed is
    looked up).
    """
    settings = get_settings()
    key = client_key(client, settings)
    limit = settings.portal_address_max_failures
    window = timedelta(minutes=settings.portal_address_window_minutes)
    now = utcnow()
    recent = repository.newest_since(
        session, action=FAILED, entity_type=_ENTITY, key=key, since=now - window, limit=limit
    )
    if len(recent) < limit:
        return
    # The limit-th newest failure is the one whose ageing out lets the next answer be checked.
    retry_after = max(1, ceil((recent[-1] + window - now).total_seconds()))
    repository.record_counted(
        session,
        action=THROTTLED,
        entity_type=_ENTITY,
        key=key,
        debtor_id=debtor_id,
        where=where,
        retry_after_seconds=retry_after,
    )
    raise TooManyRequests(
        "too_many_attempts",
        "Too many failed attempts from this address; try again later",
        retry_after_seconds=retry_after,
    )


def record_failure(session: Session, client: str, *, where: str) -> None:
    """One wrong (or refused) answer from `client`, counted towards its limit."""
    repository.record_counted(
        session,
        action=FAILED,
        entity_type=_ENTITY,
        key=client_key(client, get_settings()),
        where=where,
    )
