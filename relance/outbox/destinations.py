"""Where a webhook may be sent: refuse destinations inside our own network (SSRF, issue 22).

An admin types the endpoint URL, and the worker then POSTs to it from inside the deployment:
without a check, `http://169.254.169.254/` (cloud metadata), `http://127.0.0.1:5432/` or a host
of the private network would be reachable by anyone able to create an endpoint (or to take over
an admin session). So a URL must be https (http only outside production), carry no credentials,
and its host must be, and resolve only to, public unicast addresses.

The check runs twice: when the endpoint is created, for a clear answer, and again before every
delivery, because DNS can change after creation. At delivery the request goes to the address
that was checked (the URL's host is replaced by that address; `Host` and TLS SNI keep the name),
so a second lookup by the HTTP client cannot be answered differently (DNS rebinding). Redirects
are never followed: a 3xx answer is a failed attempt, not a new destination.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from relance.errors import BadInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class Destination:
    """A checked URL and the public address the request must go to."""

    url: str  # the URL with its host replaced by `address`
    host: str  # the name for the Host header and TLS SNI
    host_header: str
    address: IPAddress


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address routes to: mapped, 6to4, Teredo, NAT64."""
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    if address in NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def forbidden(address: IPAddress) -> bool:
    """True for every address that is not public unicast: loopback, private, link-local,
    multicast, reserved, unspecified, shared (CGNAT), documentation... (`is_global` is False for
    most of them but True for multicast, hence the explicit tests)."""
    if isinstance(address, ipaddress.IPv6Address) and any(
        forbidden(inner) for inner in _embedded_ipv4(address)
    ):
        return True
    return (
        not address.is_global
        or address.is_multicast
        or address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for `host` (empty when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    addresses: list[IPAddress] = []
    for info in infos:
        text = str(info[4][0]).split("%", 1)[0]  # an IPv6 scope id is not part of the address
        address = ipaddress.ip_address(text)
        if address not in addresses:
            addresses.append(address)
    return addresses


def parse(url: str, *, allow_http: bool) -> SplitResult:
    """The URL's parts, or BadInput saying what is wrong with it (no network access)."""
    parts = urlsplit(url.strip())
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise BadInput(
            "invalid_url",
            "The endpoint URL must be an https URL"
            + (" (or http outside production)" if allow_http else ""),
        )
    if parts.username is not None or parts.password is not None:
        raise BadInput(
            "url_credentials",
            "The endpoint URL must not carry credentials (user:password@); "
            "receivers authenticate deliveries by their signature",
        )
    try:
        parts.port  # noqa: B018 - raises ValueError on a port out of range or not a number
    except ValueError:
        raise BadInput("invalid_url", "The endpoint URL has an invalid port") from None
    return parts


def check(url: str, *, allow_http: bool) -> Destination:
    """The destination to send to, or BadInput when the URL is refused (see the module doc)."""
    parts = parse(url, allow_http=allow_http)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        addresses = resolve(host, port)
        if not addresses:
            raise BadInput("unresolvable_host", f"The host {host} does not resolve") from None
    refused = [str(a) for a in addresses if forbidden(a)]
    if refused:
        raise BadInput(
            "internal_address",
            f"The host {host} is or resolves to a non-public address ({', '.join(refused)}); "
            "webhooks are only sent to public addresses",
        )
    address = addresses[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    host_header = parts.netloc.rsplit("@", 1)[-1]
    pinned = parts._replace(netloc=netloc).geturl()
    return Destination(url=pinned, host=host, host_header=host_header, address=address)
