"""The collector inbox: order, filters, pagination, live refresh fragment, access."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from relance.db.base import utcnow
from relance.db.models import User
from tests.factories import make_handed_off_case, make_message


def _names_in_order(html: str, names: list[str]) -> list[str]:
    return sorted((n for n in names if n in html), key=html.index)


def test_inbox_lists_live_handoffs_by_priority_then_waiting_time(
    as_collector: TestClient, db: Session
) -> None:
    now = utcnow()
    _d1, _c1, h1 = make_handed_off_case(db, priority=0, name="Old Low")
    _d2, _c2, _h2 = make_handed_off_case(db, priority=2, name="Urgent Case")
    _d3, _c3, h3 = make_handed_off_case(db, priority=0, name="New Low")
    _d4, _c4, h4 = make_handed_off_case(db, priority=1, name="Closed One")
    h1.created_at = now - timedelta(hours=3)
    h3.created_at = now - timedelta(minutes=5)
    h4.status = "closed"
    db.flush()
    html = as_collector.get("/console/").text
    assert _names_in_order(html, ["Old Low", "Urgent Case", "New Low"]) == [
        "Urgent Case",
        "Old Low",
        "New Low",
    ]
    assert "Closed One" not in html
    assert "3 h 00" in html  # waiting time of the oldest
    assert "1 new" in html  # the debtor's unanswered message


def test_inbox_filters_by_search_status_and_reason(
    as_collector: TestClient, db: Session, collector: User
) -> None:
    make_handed_off_case(db, name="Alice Martin")
    _d, _c, bob = make_handed_off_case(db, name="Bob Durand")
    bob.reason = "plan_approval"
    bob.status = "assigned"
    bob.assigned_to_id = collector.id
    db.flush()
    searched = as_collector.get("/console/?q=alice").text
    assert "Alice Martin" in searched and "Bob Durand" not in searched
    mine = as_collector.get("/console/?status=mine").text
    assert "Bob Durand" in mine and "Alice Martin" not in mine
    by_reason = as_collector.get("/console/?reason=plan_approval").text
    assert "Bob Durand" in by_reason and "Alice Martin" not in by_reason


def test_inbox_is_paginated(as_collector: TestClient, db: Session) -> None:
    for i in range(27):
        make_handed_off_case(db, name=f"Paged {i:02d}")
    first = as_collector.get("/console/").text
    assert "Page 1 of 2" in first and "27 items" in first
    second = as_collector.get("/console/?page=2").text
    assert second.count("/console/conversations/") == 2


def test_polling_returns_only_the_rows_fragment(as_collector: TestClient, db: Session) -> None:
    make_handed_off_case(db, name="Live Update")
    fragment = as_collector.get(
        "/console/", headers={"HX-Request": "true", "HX-Target": "inbox-rows"}
    )
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<tbody id="inbox-rows"')
    assert 'hx-trigger="every 5s"' in fragment.text
    assert "Live Update" in fragment.text
    assert "<html" not in fragment.text


def test_new_debtor_message_shows_up_on_the_next_poll(
    as_collector: TestClient, db: Session
) -> None:
    _d, conv, _h = make_handed_off_case(db, name="Writes Again")
    make_message(db, conv, "Allô, vous êtes là ?")
    fragment = as_collector.get(
        "/console/", headers={"HX-Request": "true", "HX-Target": "inbox-rows"}
    ).text
    assert "2 new" in fragment
    assert "Allô, vous êtes là ?" in fragment


def test_inbox_needs_login(client: TestClient) -> None:
    response = client.get("/console/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login")
