"""Limits on failed sign-ins per client address, shared by the portal and the console.

The other limits each protect one target: a customer number, a debtor, a console account, an
address and e-mail pair. None of them stops one client from trying a little on every target in
turn: a few postcodes on each customer number, one common password on each staff e-mail
(password spraying). So each failure from a client also counts against its address (the edge
finds it with `relance.web.client_ip`, believing `X-Forwarded-For` only from
`TRUSTED_PROXIES`), and at `max_failures` failures within a sliding `window` the address is
refused before anything is looked up: the same refusal whatever is typed, right answer
included, and the refusal written to the audit trail. Each form has its own `AddressLimit`
(own events, own settings), built by `relance.portal.client_limit` and `relance.auth.ratelimit`.

- **IPv6**: a client is usually given a whole /64 and can take any address in it, so an IPv6
  address counts for its /64 (an IPv4-mapped one as the IPv4 address).
- **Privacy**: the audit trail keeps no address, only HMAC-SHA256(`secret_key`, the network).
  A plain hash would give the address back to anyone trying the 2³² IPv4 addresses.
- **A refusal is not a failure**: it adds nothing to the count, so the address gets attempts
  back as its failures age out of the window, whatever it sends meanwhile. A success clears
  nothing either: a guesser who holds one real account (their own) would otherwise reset the
  count at will.
- **Several processes** share the count through the database (`relance.audit_counts`); it is
  read, then written without a lock, so requests racing each other can go a few failures past
  the limit.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass, field
from datetime import timedelta
from math import ceil
from typing import Any

from sqlalchemy.orm import Session

from relance import audit_counts
from relance.db.base import utcnow

IPV6_PREFIX = 64


@dataclass(frozen=True)
class AddressLimit:
    """One form's limit: the audit actions it counts and refuses under, and its settings.

    `context` goes into the keyed hash, so one address has unrelated keys on different forms;
    `entity_type` names the counter in the audit trail.
    """

    context: str
    entity_type: str
    failed: str
    throttled: str
    max_failures: int
    window: timedelta
    secret_key: str = field(repr=False)

    def key(self, address: str) -> str:
        """The address as the audit trail keeps it (64 hex characters, `entity_id`'s width)."""
        message = f"{self.context}|{address_group(address)}".encode()
        return hmac.new(self.secret_key.encode(), message, hashlib.sha256).hexdigest()


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


def refusal(
    session: Session,
    limit: AddressLimit,
    client: str,
    *,
    debtor_id: int | None = None,
    **details: Any,
) -> int:
    """Zero when `client` is under the limit; otherwise the seconds until it may try again, and
    the refusal is recorded (with `debtor_id` and `details`, never the address)."""
    key = limit.key(client)
    now = utcnow()
    recent = audit_counts.newest_since(
        session,
        action=limit.failed,
        entity_type=limit.entity_type,
        key=key,
        since=now - limit.window,
        limit=limit.max_failures,
    )
    if len(recent) < limit.max_failures:
        return 0
    # The limit-th newest failure is the one whose ageing out lets the next attempt be checked.
    retry_after = max(1, ceil((recent[-1] + limit.window - now).total_seconds()))
    audit_counts.record_counted(
        session,
        action=limit.throttled,
        entity_type=limit.entity_type,
        key=key,
        debtor_id=debtor_id,
        retry_after_seconds=retry_after,
        **details,
    )
    return retry_after


def record_failure(session: Session, limit: AddressLimit, client: str, **details: Any) -> None:
    """One failed attempt from `client`, counted towards its limit."""
    audit_counts.record_counted(
        session,
        action=limit.failed,
        entity_type=limit.entity_type,
        key=limit.key(client),
        **details,
    )
