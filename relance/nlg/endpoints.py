"""Rasa's NLG endpoint: Rasa names a response, we answer with text in the debtor's language.

Rasa sends `?token=` (endpoints.yml `nlg.token`); anything else is refused.

The reply must never depend on how long the conversation is. Rasa 3.6's stock callback posts the
whole tracker, every event of the session, with each response it asks for: past about a hundred
turns that passed the api's general 256 KiB body limit, /nlg answered 413 and the debtor got no
reply at all, for good. So (1) the Rasa server uses `bot.nlg.BoundedCallbackNLG`, which sends the
tracker without its events; (2) this route has its own, far larger ceiling
(`NLG_MAX_BODY_BYTES`, for a Rasa still on the stock callback), and checks the token from the
query string before it reads a byte of the body: an anonymous caller cannot make the api read
megabytes; (3) only `response`, `arguments`, `slots` and `latest_message` are kept from it.

A response that cannot be rendered into a complete sentence (a value the action did not pass)
is answered 422 and audited (`wording.render_failed`), never with a sentence that has a hole:
Rasa logs the error and drops that one utterance, the turn goes on.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from relance import audit
from relance.errors import NotFound, Unauthorized
from relance.experiments.service import variant_for_reply
from relance.nlg.renderer import TemplateFailed, UnknownResponse, render
from relance.nlg.templates_store import active_templates
from relance.nlg.turn_context import turn_overrides
from relance.web.deps import AppSettings, DbSession

router = APIRouter(tags=["nlg"])

# What an authenticated Rasa may post to /nlg (app.py gives the route this limit instead of the
# general one). The bounded callback sends a few KiB; the stock one, the whole session.
NLG_MAX_BODY_BYTES = 64 * 1024 * 1024


class NlgTracker(BaseModel):
    sender_id: str | None = None
    slots: dict[str, Any] = Field(default_factory=dict)
    latest_message: dict[str, Any] = Field(default_factory=dict)


class NlgRequest(BaseModel):
    response: str = Field(min_length=1, max_length=120)
    arguments: dict[str, Any] = Field(default_factory=dict)
    tracker: NlgTracker = Field(default_factory=NlgTracker)
    channel: dict[str, Any] = Field(default_factory=dict)


class NlgResponse(BaseModel):
    text: str
    buttons: list[dict[str, Any]] = Field(default_factory=list)
    custom: dict[str, Any] | None = None


# The body is read by `_authenticated_body`, after the token check, so FastAPI is not given a
# body parameter; the documented schema (OpenAPI, the fuzz tests) is spelled out here.
_BODY_SCHEMA = {
    "type": "object",
    "required": ["response"],
    "properties": {
        "response": {"type": "string", "minLength": 1, "maxLength": 120},
        "arguments": {"type": "object"},
        "tracker": {
            "type": "object",
            "properties": {
                "sender_id": {"type": ["string", "null"]},
                "slots": {"type": "object"},
                "latest_message": {"type": "object"},
            },
        },
        "channel": {"type": "object"},
    },
}


async def _authenticated_body(
    request: Request, settings: AppSettings, token: str = Query(default="")
) -> NlgRequest:
    """The token first, from the query string; only then is the body read and parsed."""
    # bytes: compare_digest refuses non-ASCII str, and the token comes from the outside.
    # An empty configured token would match an empty `?token=`: never accept it (issue 17.2).
    expected = settings.nlg_token
    if not expected.strip() or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("bad_nlg_token", "bad NLG token")
    raw = await request.body()
    try:
        return NlgRequest.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from exc


@router.post(
    "/nlg",
    response_model=NlgResponse,
    response_model_exclude_none=True,
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": _BODY_SCHEMA}}}
    },
    responses={422: {"description": "the response cannot be rendered with the values given"}},
)
def nlg(
    request: Annotated[NlgRequest, Depends(_authenticated_body)],
    db: DbSession,
    settings: AppSettings,
) -> NlgResponse | JSONResponse:
    # The latest user message's language/channel win over the session-start slots (a debtor
    # who switches language mid-conversation is answered in the new one); arguments win over both.
    overrides = turn_overrides(request.tracker.latest_message)
    variables = {**request.tracker.slots, **overrides, **request.arguments}
    language = str(variables.get("language") or settings.default_language)
    sender_id = request.tracker.sender_id
    variant_index = (
        variant_for_reply(db, template=request.response, sender_id=sender_id) if sender_id else None
    )
    try:
        text = render(
            active_templates(db),
            request.response,
            language=language,
            variables=variables,
            tone=variables.get("tone"),
            channel=variables.get("channel"),
            variant_index=variant_index,
        )
    except UnknownResponse as exc:
        raise NotFound("template_not_found", f"no template named {exc.args[0]}") from exc
    except TemplateFailed as exc:
        # Returned, not raised: the audit event is committed with the request.
        audit.record(
            db,
            actor="system",
            action="wording.render_failed",
            response=request.response,
            language=exc.language,
            problem=exc.problem[:500],
            sender_id=request.tracker.sender_id,
        )
        return JSONResponse(
            status_code=422, content={"detail": f"cannot render {request.response}: {exc.problem}"}
        )
    # Actions may attach structured data (e.g. a payment URL) for the channel to use.
    custom = (
        request.arguments.get("custom")
        if isinstance(request.arguments.get("custom"), dict)
        else None
    )
    return NlgResponse(text=text, custom=custom)
