"""Issue 17.4: every route that takes an integer in its path or query answers an out-of-range
number (64-bit overflow, PostgreSQL `integer` overflow, zero, negative) with a 4xx, never a 500.

The routes are enumerated from the app itself, so a route added later is covered without
editing this file. Run on PostgreSQL with TEST_DATABASE_URL (the driver raises there on a value
beyond the column's type, where SQLite answered with an overflow error of its own).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, get_args

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from relance.auth.tokens import create_token
from relance.db.models import User
from tests.console.conftest import csrf_of, login

HUGE = "99999999999999999999"  # beyond 64 bits
BAD_IDS = (HUGE, str(2**63), str(2**31), "0", "-1")
# Query integers that are not row ids (counts, pages, periods): only "never a 500" applies.
NON_ID_QUERY = {"limit", "offset", "page", "period", "turn", "attempt", "declined"}


def _routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    """(full path, route) for every API route, through included routers."""

    def walk(routes: list[Any]) -> Iterator[tuple[str, APIRoute]]:
        for route in routes:
            candidates = getattr(route, "effective_candidates", None)
            if candidates is not None:
                yield from walk(candidates())
                continue
            original = getattr(route, "original_route", route)
            if isinstance(original, APIRoute):
                yield getattr(route, "path", None) or original.path, original

    yield from walk(app.routes)


def _is_int(annotation: Any) -> bool:
    return annotation is int or int in get_args(annotation)


def _int_params(route: APIRoute) -> tuple[list[str], list[str]]:
    paths: list[str] = []
    queries: list[str] = []
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        paths += [p.name for p in dependant.path_params if _is_int(p.field_info.annotation)]
        queries += [p.name for p in dependant.query_params if _is_int(p.field_info.annotation)]
        stack += dependant.dependencies
    return paths, queries


def _cases(app: FastAPI) -> list[tuple[str, str, str, str]]:
    """(method, url, parameter, value) for every integer parameter of every route."""
    cases = []
    for path, route in _routes(app):
        paths, queries = _int_params(route)
        if not paths and not queries:
            continue
        for method in sorted(route.methods or ()):
            for value in BAD_IDS:
                url = re.sub(r"\{[^}]+\}", "1", path)
                for name in paths:
                    url_one = re.sub(r"\{[^}]+\}", "1", path.replace("{" + name + "}", value))
                    cases.append((method, url_one, name, value))
                for name in queries:
                    sep = "&" if "?" in url else "?"
                    cases.append((method, f"{url}{sep}{name}={value}", name, value))
    return cases


@pytest.fixture
def as_admin_with_token(client: TestClient, admin: User, db: Session) -> Iterator[dict[str, str]]:
    assert login(client, admin.email).status_code == 303
    _row, token = create_token(db, "ids", user=admin)
    yield {"Authorization": f"Bearer {token}", "X-CSRF-Token": csrf_of(client)}


def test_every_integer_route_parameter_is_bounded(
    client: TestClient, as_admin_with_token: dict[str, str]
) -> None:
    cases = _cases(client.app)  # type: ignore[arg-type]
    assert len({c[1].split("?")[0] for c in cases}) >= 25, "route enumeration found too little"
    failures = []
    for method, url, name, value in cases:
        response = client.request(method, url, headers=as_admin_with_token, follow_redirects=False)
        if response.status_code >= 500:
            failures.append(f"{method} {url} -> {response.status_code}")
            continue
        is_id = name not in NON_ID_QUERY
        if (
            is_id
            and value in (HUGE, str(2**63), str(2**31))
            and response.status_code not in (404, 422)
        ):
            failures.append(f"{method} {url} ({name}) -> {response.status_code}, wanted 404/422")
    assert not failures, "\n".join(failures)


def test_console_answers_an_out_of_range_id_with_a_page_that_says_so(
    client: TestClient, as_admin_with_token: dict[str, str]
) -> None:
    response = client.get(f"/console/conversations/{HUGE}")
    assert response.status_code == 422
    assert "text/html" in response.headers["content-type"]
    assert "conversation_id" in response.text
    assert "2147483647" in response.text


def test_api_answers_an_out_of_range_id_with_a_json_error(
    client: TestClient, as_admin_with_token: dict[str, str]
) -> None:
    response = client.get(f"/api/v1/debtors/{HUGE}", headers=as_admin_with_token)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_request"
    assert body["details"][0]["field"] == "path.debtor_id"


@pytest.mark.parametrize("value", [HUGE, str(2**31), "0", "abc"])
def test_audit_log_filter_refuses_an_impossible_debtor_id(
    client: TestClient, as_admin_with_token: dict[str, str], value: str
) -> None:
    """The filter is free text in the page's form; it was parsed with int() after isdigit()."""
    response = client.get(f"/console/admin/audit?debtor_id={value}")
    assert response.status_code == 422
    assert "debtor_id" in response.text


def test_audit_log_filter_still_accepts_empty_and_real_ids(
    client: TestClient, as_admin_with_token: dict[str, str]
) -> None:
    assert client.get("/console/admin/audit?debtor_id=").status_code == 200
    assert client.get("/console/admin/audit?debtor_id=12").status_code == 200
