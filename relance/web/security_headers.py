"""Browser hardening headers on every response, and the console's stricter set.

Everywhere: no framing (clickjacking of the console's take-over or erase buttons), no MIME
sniffing, referrers kept on this origin. On console pages (not its two static files): a
Content-Security-Policy that lets only our own script and stylesheet run (the templates carry no
inline script or style; htmx is told not to inject its indicator style or evaluate code, see
base.html), and `Cache-Control: no-store`, because those pages show debtors' names, debts and
messages and must not stay in a shared or back-button cache after logout.
A header the route set itself (the payment pages' `Referrer-Policy: no-referrer`) is kept.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)
EVERYWHERE = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
CONSOLE = {
    "Content-Security-Policy": CONSOLE_CSP,
    "Cache-Control": "no-store",
}


def _is_console_page(path: str) -> bool:
    return (path == "/console" or path.startswith("/console/")) and not path.startswith(
        "/console/static/"
    )


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = dict(EVERYWHERE)
        if _is_console_page(scope.get("path", "")):
            wanted.update(CONSOLE)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in wanted.items():
                    if name == "Cache-Control" or name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
