"""Property-based fuzzing of /api/v1 and the public webhooks: no input may cause a 500.

Schemathesis generates valid and invalid requests from the app's own OpenAPI document, bounded
and derandomized so the run is quick and repeatable (FUZZ_EXAMPLES raises the budget locally).
Every webhook must answer unsigned or forged input with a 4xx and store nothing. Their form
fields are not in the OpenAPI document (the raw body is needed for the signature check), so
`fuzz_schema` spells out each webhook's body and signature header for the fuzzer.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from relance.db.models import AuditEvent, Message, Payment, WebhookEvent

WEBHOOKS = (
    "/twilio/sms",
    "/twilio/status",
    "/stripe/webhook",
    "/nlg",
    "/twilio/voice",
    "/twilio/voice/gather",
    "/twilio/voice/dial",
    "/twilio/voice/status",
)
# per operation and per mode (valid, invalid): 15 + 15 = 30 requests per operation by default
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
# signature and token checks come first, whatever the input: fewer cases prove them
WEBHOOK_EXAMPLES = max(EXAMPLES * 2 // 3, 3)
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    # no shrinking: a failure is reported as generated (with a curl line), in seconds not minutes
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
)

TWILIO_FORM = {
    "type": "object",
    "properties": {
        name: {"type": "string"}
        for name in (
            "AccountSid",
            "MessageSid",
            "SmsSid",
            "CallSid",
            "From",
            "To",
            "Body",
            "NumMedia",
            "MessageStatus",
            "CallStatus",
            "ErrorCode",
            "ProfileName",
            "WaId",
            "SpeechResult",
            "Digits",
            "Confidence",
            "AnsweredBy",
            "DialCallStatus",
        )
    },
    "additionalProperties": {"type": "string"},
}
# path: (signature header, media type, body schema)
SIGNED_BODIES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "/twilio/sms": ("X-Twilio-Signature", "application/x-www-form-urlencoded", TWILIO_FORM),
    "/twilio/status": ("X-Twilio-Signature", "application/x-www-form-urlencoded", TWILIO_FORM),
    "/twilio/voice": ("X-Twilio-Signature", "application/x-www-form-urlencoded", TWILIO_FORM),
    "/twilio/voice/gather": (
        "X-Twilio-Signature",
        "application/x-www-form-urlencoded",
        TWILIO_FORM,
    ),
    "/twilio/voice/dial": ("X-Twilio-Signature", "application/x-www-form-urlencoded", TWILIO_FORM),
    "/twilio/voice/status": (
        "X-Twilio-Signature",
        "application/x-www-form-urlencoded",
        TWILIO_FORM,
    ),
    "/stripe/webhook": ("Stripe-Signature", "application/json", {"type": "object"}),
}


def side_effects(db: Session) -> tuple[int, ...]:
    return tuple(
        db.scalar(select(func.count()).select_from(model)) or 0
        for model in (Message, WebhookEvent, Payment, AuditEvent)
    )


@pytest.fixture
def api_schema(app: FastAPI) -> Any:
    """The document exactly as the app serves it."""
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture
def fuzz_schema(app: FastAPI) -> Any:
    """The served document, plus each webhook's body and signature header."""
    document = copy.deepcopy(app.openapi())
    for path, (header, media_type, body) in SIGNED_BODIES.items():
        operation = document["paths"].get(path, {}).get("post")
        if operation is None:
            continue
        operation["parameters"] = [
            p for p in operation.get("parameters", []) if p.get("name") != header
        ] + [{"name": header, "in": "header", "required": False, "schema": {"type": "string"}}]
        operation["requestBody"] = {"required": True, "content": {media_type: {"schema": body}}}
    schema = schemathesis.openapi.from_dict(document)
    schema.app = app
    return schema


def fuzz(
    schema: Any,
    path_regex: str,
    check: Callable[[schemathesis.Case], None],
    examples: int = EXAMPLES,
    ids: dict[str, int] | None = None,
) -> list[str]:
    """Run `check` on valid and invalid cases of each matching operation; return the failures.

    With `ids`, only operations whose path parameters are all in `ids` run, on those rows.
    """
    failures: list[str] = []
    ran: list[str] = []
    operations = [r.ok() for r in schema.include(path_regex=path_regex).get_all_operations()]
    assert operations, f"no operation matches {path_regex}: nothing was fuzzed"
    for operation in operations:
        names = re.findall(r"\{(\w+)\}", operation.path)
        if ids is not None and not (names and set(names) <= set(ids)):
            continue
        fixed = {name: ids[name] for name in names} if ids is not None else None
        ran.append(operation.label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed)

            @settings(FUZZ, max_examples=examples)
            @given(case=strategy)
            def run(case: schemathesis.Case) -> None:
                try:
                    check(case)
                except Exception as exc:
                    exc.add_note("request: " + case.as_curl_command())
                    raise

            try:
                run()
            except Unsatisfiable:
                pass  # nothing to make invalid (no parameters, no body): positive mode covers it
            except Exception as exc:  # keep going: report every failing operation at once
                notes = "\n".join(getattr(exc, "__notes__", []))
                failures.append(f"{operation.label} [{mode.value}]: {exc!r}\n{notes}")
    assert ran, "every matching operation was filtered out: nothing was fuzzed"
    return failures


def refused_and_stored_nothing(db: Session) -> Callable[[schemathesis.Case], None]:
    def check(case: schemathesis.Case) -> None:
        before = side_effects(db)
        response = case.call()
        case.validate_response(response, checks=[not_a_server_error])
        assert 400 <= response.status_code < 500, (response.status_code, response.text[:200])
        assert side_effects(db) == before, "a refused request stored something"

    return check


def test_api_never_fails_on_any_input(api_schema: Any, auth: dict[str, str], seeded: None) -> None:
    def check(case: schemathesis.Case) -> None:
        response = case.call(headers=auth)
        checks = [not_a_server_error]
        if response.status_code < 400:
            checks.append(response_schema_conformance)
        case.validate_response(response, checks=checks, headers=auth)

    failures = fuzz(api_schema, r"^/api/v1/", check)
    assert not failures, "\n\n".join(failures)


def test_api_never_fails_on_existing_rows(
    api_schema: Any, auth: dict[str, str], seeded: dict[str, int]
) -> None:
    """Random ids rarely exist: run the routes with path ids once more on real rows."""

    def check(case: schemathesis.Case) -> None:
        response = case.call(headers=auth)
        case.validate_response(response, checks=[not_a_server_error], headers=auth)

    failures = fuzz(api_schema, r"^/api/v1/", check, examples=WEBHOOK_EXAMPLES, ids=seeded)
    assert not failures, "\n\n".join(failures)


def test_api_refuses_forged_tokens(api_schema: Any, db: Session) -> None:
    forged = {"Authorization": "Bearer rlc_expired-or-forged"}

    def check(case: schemathesis.Case) -> None:
        before = side_effects(db)
        response = case.call(headers=forged)
        case.validate_response(response, checks=[not_a_server_error])
        # 400/413/415/422: the body or a parameter was refused before the token lookup ran
        assert response.status_code in (400, 401, 413, 415, 422), response.status_code
        if response.status_code == 401:
            assert response.headers["www-authenticate"][0].startswith("Bearer")
        assert side_effects(db) == before

    # the token check does not depend on the input: a few cases per operation prove it
    failures = fuzz(api_schema, r"^/api/v1/", check, examples=max(EXAMPLES // 3, 3))
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("path", WEBHOOKS)
def test_unsigned_or_forged_webhooks_are_4xx_and_store_nothing(
    fuzz_schema: Any, db: Session, path: str
) -> None:
    """Nothing the fuzzer makes carries a valid Twilio/Stripe signature or the NLG token."""
    check = refused_and_stored_nothing(db)
    failures = fuzz(fuzz_schema, f"^{path}$", check, examples=WEBHOOK_EXAMPLES)
    assert not failures, "\n\n".join(failures)


def test_payer_pages_never_fail_and_take_no_money(fuzz_schema: Any, db: Session) -> None:
    """Public pages keyed by a random link token: unknown or malformed tokens are a 4xx page."""

    def check(case: schemathesis.Case) -> None:
        before = side_effects(db)
        response = case.call()
        case.validate_response(response, checks=[not_a_server_error])
        assert response.status_code >= 400, (response.status_code, response.text[:200])
        assert side_effects(db) == before

    failures = fuzz(fuzz_schema, r"^/pay/", check, examples=WEBHOOK_EXAMPLES)
    assert not failures, "\n\n".join(failures)
