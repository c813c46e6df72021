"""Reject oversized bodies early (413) instead of reading them into memory.

One limit for every route, except the few given their own (`per_path`): Rasa's NLG callback posts
the whole dialogue with every reply it asks for, so `/nlg` gets a far larger ceiling and checks its
token before it reads a byte (relance/nlg/endpoints.py). Paths with a variable part (the portal's
dispute form, `/portal/<token>/dispute`, which carries attachments) match a pattern
(`per_pattern`) instead.

A refusal is a JSON problem for the API's clients; a page people fill in (the dispute form)
names its own answer in `on_too_large`, so a debtor whose photos are too heavy reads a page in
their language, not JSON.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The answer to an oversized body on a path: built from the request's scope and the limit.
OnTooLarge = Callable[[Scope, int], Response]


class BodySizeLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        per_path: Mapping[str, int] | None = None,
        per_pattern: Sequence[tuple[re.Pattern[str], int]] = (),
        on_too_large: Sequence[tuple[re.Pattern[str], OnTooLarge]] = (),
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.per_path = dict(per_path or {})
        self.per_pattern = list(per_pattern)
        self.on_too_large = list(on_too_large)

    def limit_for(self, path: str) -> int:
        if path in self.per_path:
            return self.per_path[path]
        for pattern, limit in self.per_pattern:
            if pattern.fullmatch(path):
                return limit
        return self.max_bytes

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, max_bytes: int) -> None:
        path = scope.get("path", "")
        for pattern, respond in self.on_too_large:
            if pattern.fullmatch(path):
                # The page may read the database (the visitor's language): not on the loop.
                response = await run_in_threadpool(respond, scope, max_bytes)
                await response(scope, receive, send)
                return
        await _too_large(send, max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.limit_for(scope.get("path", ""))
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            await self._refuse(scope, receive, send, max_bytes)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await self._refuse(scope, receive, send, max_bytes)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send: Send, max_bytes: int) -> None:
    """The limit is named, so the caller knows how to split what it sends."""
    body = (
        '{"error":"payload_too_large","message":"Request body too large: this endpoint accepts '
        f'at most {max_bytes} bytes; send fewer or smaller files per request"}}'
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
