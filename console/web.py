"""Console plumbing: templates, the route class that turns auth errors into pages, helpers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from http import HTTPStatus
from math import ceil
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from console.payment_methods import failure_label
from relance.auth.deps import CsrfRejected, Forbidden, NotAuthenticated
from relance.errors import RelanceError
from relance.nlg.formatting import money
from relance.web.errors import status_for

log = logging.getLogger(__name__)
TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
PREFIX = "/console"
PAGE_SIZE = 25


def _money(amount_minor: int | None, currency: str = "EUR") -> str:
    return money(amount_minor or 0, currency, "en")


def _ago(value: datetime | None, now: datetime | None = None) -> str:
    """'4 min', '2 h', '3 d': waiting times in the inbox."""
    if value is None:
        return "—"
    seconds = int(((now or datetime.now(UTC)) - value).total_seconds())
    if seconds < 60:
        return f"{max(seconds, 0)} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d}"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def _dt(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def _make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env = templates.env
    env.filters["money"] = _money
    env.filters["ago"] = _ago
    env.filters["dt"] = _dt
    env.filters["failure_label"] = failure_label
    env.globals["prefix"] = PREFIX
    return templates


templates = _make_templates()


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200
) -> HTMLResponse:
    ctx = {
        "user": getattr(request.state, "user", None),
        "csrf_token": getattr(request.state, "csrf_token", ""),
        **(context or {}),
    }
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def redirect(request: Request, url: str) -> Response:
    """303 for plain forms; HX-Redirect for HTMX so the whole page changes."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


class ConsoleRoute(APIRoute):
    """Turns the auth exceptions raised by dependencies into browser answers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except NotAuthenticated:
                target = request.url.path
                if request.url.query:
                    target += "?" + request.url.query
                if request.method != "GET":
                    target = PREFIX + "/"
                return redirect(request, f"{PREFIX}/login?next={quote(target)}")
            except Forbidden:
                return render(request, "forbidden.html", status_code=403)
            except HTTPException as exc:
                if exc.status_code != 404:
                    raise
                return render(
                    request,
                    "error.html",
                    {
                        "title": "Not found",
                        "message": "This page or record does not exist (any more).",
                    },
                    status_code=404,
                )
            except RelanceError as exc:  # a service said no: its message, on a page
                status = status_for(exc)
                return render(
                    request,
                    "error.html",
                    {"title": HTTPStatus(status).phrase, "message": exc.message},
                    status_code=status,
                )
            except CsrfRejected:
                return render(
                    request,
                    "error.html",
                    {
                        "title": "Request refused",
                        "message": "The form expired or did not come from "
                        "this console. Reload the page and try again.",
                    },
                    status_code=403,
                )
            except RequestValidationError as exc:  # e.g. an id beyond the SQL integer range
                return render(
                    request,
                    "error.html",
                    {"title": "Invalid request", "message": _validation_message(exc)},
                    status_code=422,
                )

        return guarded


def _validation_message(exc: RequestValidationError) -> str:
    """'conversation_id: Input should be less than or equal to 2147483647', one per problem."""
    return "; ".join(
        f"{err.get('loc', ('',))[-1]}: {err.get('msg', 'invalid')}" for err in exc.errors()
    )


class Page:
    """Pagination over a counted query: page numbers, and links that keep the filters."""

    def __init__(self, total: int, page: int, size: int = PAGE_SIZE, param: str = "page") -> None:
        self.total = total
        self.size = size
        self.param = param  # the query parameter: two lists on one page need two
        self.pages = max(ceil(total / size), 1)
        self.number = min(max(page, 1), self.pages)

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    def link(self, base: str, filters: dict[str, Any], number: int) -> str:
        query = {k: v for k, v in filters.items() if v not in (None, "")}
        query[self.param] = number
        return f"{base}?{urlencode(query)}"
