"""Posting the sandbox checkout's buttons as its page does (tests that skip the browser)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit


def completion(checkout_url: str) -> tuple[str, dict[str, str]]:
    """The sandbox page's form for a checkout URL (SandboxProvider._url): where it posts, and
    the success and cancel URLs it carries as hidden fields; add the `outcome` button."""
    parts = urlsplit(checkout_url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    return f"{parts.path}/complete", {"success": query["success"], "cancel": query["cancel"]}
