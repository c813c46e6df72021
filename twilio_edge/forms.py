"""Twilio's webhook forms as typed, validated objects: what the channel services receive.

Twilio posts `application/x-www-form-urlencoded` fields named in PascalCase (`MessageSid`, `From`,
`CallStatus`…); the field aliases below are those real parameter names, from Twilio's webhook
references (Messaging: "inbound message" and "status callback" requests; Voice: the call request,
`<Gather>` action, `<Dial>` action and status callback). Parsing happens once, here, so a service
never reads a raw dict and every malformed form becomes the same `BadInput` (a 400 with a code
and a message saying which field is wrong) before anything is stored.

As with `dict.get(name) or default`, which the services used before, an empty field counts as
absent: Twilio sends `Digits=` and `SpeechResult=` after a silent gather.

`payload` keeps the form exactly as received: the webhook claim stores it (`claims.claim`) as the
trace of what Twilio said.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple, Self

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from relance.errors import BadInput
from twilio_edge.addresses import InvalidAddress, parse_twilio_from, to_e164
from twilio_edge.splitting import TWILIO_MAX_BODY

MESSAGE_SID = re.compile(r"^[A-Z]{2}[0-9A-Za-z]{10,64}$")  # SM…/MM…/SMS…: 2 letters + 32 hex
CALL_SID = re.compile(r"^CA[0-9A-Za-z]{10,64}$")  # CA + 32 hex
MAX_MEDIA = 10  # Twilio's own limit per message
# `AnsweredBy` values from answering-machine detection (MachineDetection=Enable) that mean a machine.
MACHINE_ANSWERS = frozenset(
    {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other"}
)


def _bad(code: str, message: str) -> PydanticCustomError:
    """A validation error that `TwilioForm.parse` turns into `BadInput(code, message)`."""
    return PydanticCustomError(code, message)


class TwilioForm(BaseModel):
    """Base of every webhook form: aliases are Twilio's names, unknown fields are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=False)
    _payload: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_absent(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            return {key: value for key, value in data.items() if value != ""}
        return data

    @classmethod
    def parse(cls, fields: Mapping[str, str]) -> Self:
        """Validate Twilio's fields; any problem is a `BadInput` naming the field."""
        try:
            form = cls.model_validate(dict(fields))
        except ValidationError as exc:
            raise _to_bad_input(exc) from None
        form._payload = dict(fields)
        return form

    @property
    def payload(self) -> dict[str, str]:
        """The fields exactly as Twilio sent them (stored with the webhook claim)."""
        return dict(self._payload)


def _to_bad_input(exc: ValidationError) -> BadInput:
    error = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in error["loc"]) or "form"
    if error["type"] == "missing":
        return BadInput("missing_field", f"{field} is required")
    if error["type"] in ("value_error", "string_type", "int_parsing", "string_pattern_mismatch"):
        return BadInput("invalid_field", f"{field}: {error['msg']}")
    return BadInput(error["type"], error["msg"])


# -- messaging ---------------------------------------------------------------------------------


class Sender(NamedTuple):
    channel: str  # "sms" or "whatsapp"
    address: str  # E.164, with the "whatsapp:" prefix for WhatsApp, as stored on contacts


class Media(BaseModel):
    model_config = ConfigDict(frozen=True)
    url: str
    content_type: str

    def as_dict(self) -> dict[str, str]:
        return {"url": self.url, "content_type": self.content_type}


class InboundMessage(TwilioForm):
    """An SMS or WhatsApp message sent to one of our numbers (`POST /twilio/sms`)."""

    sid: str = Field(validation_alias=AliasChoices("MessageSid", "SmsSid"))
    sender: Sender = Field(validation_alias="From")
    body: str = Field("", validation_alias="Body")
    media: tuple[Media, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _collect_media(cls, data: Any) -> Any:
        """`NumMedia` + `MediaUrl{i}`/`MediaContentType{i}` → one list (never trusted blindly)."""
        if not isinstance(data, Mapping):
            return data
        raw = str(data.get("NumMedia") or "0")
        if not raw.isdigit() or int(raw) > MAX_MEDIA:
            raise _bad("invalid_media_count", "NumMedia must be an integer between 0 and 10")
        media = [
            {
                "url": str(data.get(f"MediaUrl{i}", "")),
                "content_type": str(data.get(f"MediaContentType{i}", "")),
            }
            for i in range(int(raw))
        ]
        return {**{k: v for k, v in data.items() if k != "media"}, "media": media}

    @field_validator("sid")
    @classmethod
    def _sid(cls, value: str) -> str:
        if not MESSAGE_SID.match(value):
            raise _bad("invalid_message_sid", "MessageSid is not a Twilio message id")
        return value

    @field_validator("sender", mode="before")
    @classmethod
    def _sender(cls, value: Any) -> Sender:
        try:
            return Sender(*parse_twilio_from(str(value)))
        except InvalidAddress:
            raise _bad("invalid_phone", "From is not a valid phone number") from None

    @field_validator("body")
    @classmethod
    def _body(cls, value: str) -> str:
        return value.strip()[:TWILIO_MAX_BODY]

    @property
    def channel(self) -> str:
        return self.sender.channel

    @property
    def address(self) -> str:
        return self.sender.address

    def media_dicts(self) -> list[dict[str, str]]:
        return [m.as_dict() for m in self.media]


class MessageStatusCallback(TwilioForm):
    """Delivery progress of a message we sent (`StatusCallback` of Messages.create)."""

    sid: str = Field(validation_alias=AliasChoices("MessageSid", "SmsSid"))
    status: str = Field(validation_alias=AliasChoices("MessageStatus", "SmsStatus"))
    error_code: str | None = Field(None, validation_alias="ErrorCode")

    @field_validator("status")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


# -- voice -------------------------------------------------------------------------------------


class CallForm(TwilioForm):
    """Fields every Voice request carries; `address` is the debtor's side of the call.

    Outbound (we dialled): the debtor is `To`, which must be a phone number. Inbound: the debtor
    is `From`; a withheld or anonymous caller id ("anonymous", "+266696687") is not an error but an
    unknown caller, so `address` is None and the call hears the neutral message.
    """

    sid: str = Field(validation_alias="CallSid")
    direction: str = Field("inbound", validation_alias="Direction")
    from_: str | None = Field(None, validation_alias="From")
    to: str | None = Field(None, validation_alias="To")
    _address: str | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _sid_first(cls, data: Any) -> Any:
        # Checked before the others so a forged or missing CallSid is what the 400 names.
        if isinstance(data, Mapping) and not CALL_SID.match(str(data.get("CallSid") or "")):
            raise _bad("invalid_call_sid", "CallSid is missing or not a Twilio call id")
        return data

    @model_validator(mode="after")
    def _debtor_address(self) -> Self:
        raw = self.to if self.outbound else self.from_
        if not raw:
            raise _bad("missing_field", "From and To are required")
        try:
            self._address = to_e164(raw)
        except InvalidAddress:
            if self.outbound:
                raise _bad("invalid_phone", "To is not a phone number") from None
            self._address = None  # withheld caller id: handled as an unknown number
        return self

    @property
    def outbound(self) -> bool:
        return self.direction.startswith("outbound")

    @property
    def address(self) -> str | None:
        return self._address


class CallStart(CallForm):
    """The call request (`POST /twilio/voice`): an inbound call, or our outbound call answered.

    `AnsweredBy` is the answering-machine detection result, present on calls we placed.
    """

    answered_by: str = Field("", validation_alias="AnsweredBy")

    @property
    def machine(self) -> bool:
        return self.answered_by in MACHINE_ANSWERS

    @property
    def fax(self) -> bool:
        return self.answered_by == "fax"


class CallGather(CallForm):
    """A `<Gather>` result: keypad digits, recognised speech, or nothing (silence)."""

    digits: str = Field("", validation_alias="Digits")
    speech: str = Field("", validation_alias="SpeechResult")
    confidence: str | None = Field(None, validation_alias="Confidence")

    @field_validator("digits")
    @classmethod
    def _digits(cls, value: str) -> str:
        return value.strip().rstrip("#")

    @field_validator("speech")
    @classmethod
    def _speech(cls, value: str) -> str:
        return value.strip()


class CallDialResult(CallForm):
    """The `<Dial>` action after a transfer to a collector: answered, busy, no-answer, failed."""

    dial_status: str = Field("", validation_alias="DialCallStatus")
    dial_duration: str | None = Field(None, validation_alias="DialCallDuration")

    @property
    def bridged(self) -> bool:
        return self.dial_status in ("completed", "answered")


class CallStatusCallback(TwilioForm):
    """Call progress (`StatusCallback` of Calls.create): initiated … completed, busy, failed."""

    sid: str = Field(validation_alias="CallSid")
    status: str = Field(validation_alias="CallStatus")
    answered_by: str | None = Field(None, validation_alias="AnsweredBy")
    duration_seconds: int | None = Field(None, validation_alias="CallDuration")
    error_code: str | None = Field(None, validation_alias="ErrorCode")

    @field_validator("status")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()

    @field_validator("duration_seconds", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> int | None:
        # A duration we cannot read is dropped, not refused: the status itself still counts.
        return int(value) if isinstance(value, str) and value.isdigit() else None


# -- status routing ----------------------------------------------------------------------------

StatusCallback = MessageStatusCallback | CallStatusCallback


def parse_status_callback(fields: Mapping[str, str]) -> StatusCallback:
    """`POST /twilio/status` carries either a message status (MessageSid) or a call's (CallSid).

    A message id wins: Twilio includes a CallSid on no message callback, but an SMS sent during a
    call is still a message.
    """
    if fields.get("MessageSid") or fields.get("SmsSid"):
        return MessageStatusCallback.parse(fields)
    if fields.get("CallSid"):
        return CallStatusCallback.parse(fields)
    raise BadInput("missing_field", "MessageSid or CallSid is required")
