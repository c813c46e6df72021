"""A stand-in for the system resolver: tests must not depend on the network's DNS."""

from __future__ import annotations

import socket
from typing import Any

import pytest

PUBLIC = "93.184.215.14"  # a public unicast address


def fake_dns(monkeypatch: pytest.MonkeyPatch, names: dict[str, list[str]]) -> None:
    """`socket.getaddrinfo` answering from `names`; any other *.example name gets PUBLIC."""

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        addresses = names.get(host) or ([PUBLIC] if host.endswith(".example") else None)
        if addresses is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port, 0, 0) if ":" in a else (a, port),
            )
            for a in addresses
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
