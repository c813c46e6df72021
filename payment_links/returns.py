"""Where the payer pages may send the debtor next: only our own pages, never an open redirect.

A payment started on the portal carries the portal's address through the payer page, the
provider's checkout and back (`?return=`), so every page on the way can offer "Back to my
account" and a paid checkout can end on the portal. That address comes from the browser, so it
is only used when it is the portal page of a link (`/portal/<token>`) on this site; anything else
(another site, `//host`, another path, a query, dots, backslashes) is treated as absent: the page
works as if the debtor had not come from the portal, and nobody is sent anywhere on its say-so.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from relance.settings import Settings

# A portal link's page: /portal/ and its token (URL-safe base64, `relance.secret_links`).
PORTAL_PAGE = re.compile(r"/portal/[A-Za-z0-9_-]{20,128}")
# Where a checkout may return to: a payer page or the portal, on this site.
OWN_PAGES = ("/pay/", "/portal/")


def portal_page(settings: Settings, value: str | None) -> str | None:
    """The portal page (`/portal/<token>`) `value` names, relative or absolute on this site's
    public address; None for anything else."""
    if not value:
        return None
    base = settings.public_base_url.rstrip("/")
    path = value.removeprefix(base) if value.startswith(f"{base}/") else value
    return path if PORTAL_PAGE.fullmatch(path) else None


def own_page(settings: Settings, url: str | None) -> bool:
    """Whether a checkout's success or cancel address is one of our pages (the sandbox honours
    it as Stripe does, so it must never be somewhere else)."""
    if not url or "\\" in url:
        return False
    parts, base = urlsplit(url), urlsplit(settings.public_base_url)
    return (
        (parts.scheme, parts.netloc) == (base.scheme, base.netloc)
        and parts.path.startswith(OWN_PAGES)
        and ".." not in parts.path
    )
