"""The client's address, believing `X-Forwarded-For` only from proxies the operator named.

Anyone can send `X-Forwarded-For`. Believed from any peer (uvicorn's default believes it from
127.0.0.1, where a local proxy or an SSH tunnel also sits), it lets a client pick a fresh address
for every login attempt and slip past the throttle. So the header counts only when the direct
peer is listed in `TRUSTED_PROXIES` (addresses or networks; empty by default), and then the
client is the right-most address in the chain that is not itself a trusted proxy. Run uvicorn
with `--no-proxy-headers` (as `relance run` does) so that it leaves the peer address alone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from fastapi import Request

from relance.settings import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(entries: Sequence[str]) -> list[Network]:
    return [ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip()]


def _is_trusted(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(request: Request, settings: Settings) -> str:
    """The address to throttle and audit: the peer, or the forwarded client behind a trusted
    proxy."""
    peer = request.client.host if request.client else "unknown"
    networks = _networks(settings.trusted_proxies)
    if not networks or not _is_trusted(peer, networks):
        return peer
    chain = [
        hop.strip()
        for header in request.headers.getlist("x-forwarded-for")
        for hop in header.split(",")
        if hop.strip()
    ]
    for hop in reversed(chain):
        if not _is_trusted(hop, networks):
            return hop[:64]
    return peer
