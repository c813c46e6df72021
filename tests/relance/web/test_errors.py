"""One error model: services raise relance.errors, the api maps each class to HTTP once, with an
RFC 9457 problem document; the console shows the same refusal as a page."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from console.web import ConsoleRoute
from relance import errors
from relance.web.errors import PROBLEM_JSON, install_error_handlers, status_for


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.BadInput("x", "m"), 400),
        (errors.InvalidContent("x", "m"), 422),
        (errors.UnsupportedMediaType("x", "m"), 415),
        (errors.Unauthorized("x", "m"), 401),
        (errors.Forbidden("x", "m"), 403),
        (errors.NotFound("x", "m"), 404),
        (errors.Conflict("x", "m"), 409),
        (errors.Gone("x", "m"), 410),
        (errors.PolicyViolation("x", "m"), 422),
        (errors.Unavailable("x", "m"), 503),
        (errors.TooManyRequests("x", "m", retry_after_seconds=60), 429),
    ],
)
def test_each_error_has_one_status(error: errors.RelanceError, status: int) -> None:
    assert status_for(error) == status


def test_a_subclass_defined_elsewhere_takes_its_parents_status() -> None:
    class PlanTooLong(errors.PolicyViolation):
        pass

    assert status_for(PlanTooLong("plan_too_long", "at most 12 installments")) == 422


def _app(route_class: type | None = None) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    router = APIRouter(route_class=route_class) if route_class else APIRouter()

    @router.get("/conflict")
    def conflict() -> None:
        raise errors.Conflict("dispute_closed", "Dispute D-1 is already resolved", dispute="D-1")

    @router.get("/auth")
    def auth() -> None:
        raise errors.Unauthorized("missing_token", "A token is required", challenge="Bearer")

    @router.get("/throttled")
    def throttled() -> None:
        raise errors.TooManyRequests("too_many_attempts", "Slow down", retry_after_seconds=90)

    app.include_router(router)
    return TestClient(app)


def test_the_api_answers_a_problem_document() -> None:
    response = _app().get("/conflict")
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json() == {
        "type": "urn:relance:error:dispute_closed",
        "title": "Conflict",
        "status": 409,
        "detail": "Dispute D-1 is already resolved",
        "code": "dispute_closed",
        "error": "dispute_closed",
        "message": "Dispute D-1 is already resolved",
        "dispute": "D-1",
    }


def test_unauthorized_names_its_scheme() -> None:
    response = _app().get("/auth")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_too_many_requests_says_when_to_try_again() -> None:
    response = _app().get("/throttled")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "90"
    assert response.json()["code"] == "too_many_attempts"


def test_the_console_shows_the_refusal_as_a_page() -> None:
    response = _app(ConsoleRoute).get("/conflict")
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("text/html")
    assert "Dispute D-1 is already resolved" in response.text
    assert "Back to the inbox" in response.text


def test_a_bad_twilio_form_is_a_problem_not_a_fastapi_detail(client: TestClient) -> None:
    """The channel services raise relance errors: no module outside the api imports FastAPI's
    HTTPException to refuse input."""
    response = client.post(
        "/twilio/status", data={"MessageStatus": "delivered"}, headers={"X-Twilio-Signature": "x"}
    )
    assert response.status_code == 403
    assert response.json()["code"] == "invalid_signature"
