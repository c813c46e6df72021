"""A twilio HttpClient that sends every request to `TWILIO_API_BASE`.

The official client builds URLs on twilio.com (per domain, region and edge). Rewriting the scheme
and host here, in one place, guarantees no request escapes to the internet when the base points
at the local recorder (development, tests), whatever resource is called.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response


def rebase(url: str, base: str) -> str:
    parts = urlsplit(url)
    return base.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")


class BaseUrlHttpClient(TwilioHttpClient):  # type: ignore[misc]  # twilio ships no types: its base is Any
    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        return super().request(method, rebase(url, self.base_url), *args, **kwargs)
