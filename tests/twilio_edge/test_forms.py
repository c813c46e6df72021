"""Twilio's webhook forms parsed into typed models: real field names in, clear BadInput out."""

from __future__ import annotations

import pytest

from relance.errors import BadInput
from twilio_edge.forms import (
    CallDialResult,
    CallGather,
    CallStart,
    CallStatusCallback,
    InboundMessage,
    MessageStatusCallback,
    parse_status_callback,
)

SMS_SID = "SM" + "a" * 32
CALL_SID = "CA" + "b" * 32
OURS = "+33180000000"


def _sms(**fields: str) -> dict[str, str]:
    return {
        "MessageSid": SMS_SID,
        "SmsSid": SMS_SID,
        "From": "+33639981111",
        "Body": "hi",
        **fields,
    }


def _call(**fields: str) -> dict[str, str]:
    return {"CallSid": CALL_SID, "Direction": "inbound", "From": "0639981111", "To": OURS, **fields}


def _refused(model: type[InboundMessage] | type[CallStart], fields: dict[str, str]) -> BadInput:
    with pytest.raises(BadInput) as caught:
        model.parse(fields)
    return caught.value


def test_inbound_sms_and_whatsapp_with_media() -> None:
    sms = InboundMessage.parse(_sms(Body="  Je paie demain \n", ToCountry="FR"))
    assert (sms.sid, sms.channel, sms.address, sms.body) == (
        SMS_SID,
        "sms",
        "+33639981111",
        "Je paie demain",
    )
    assert sms.payload["ToCountry"] == "FR"  # stored as received, unknown fields included

    whatsapp = InboundMessage.parse(
        _sms(
            From="whatsapp:+33639981111",
            Body="",
            NumMedia="2",
            MediaUrl0="https://api.twilio.com/m/0",
            MediaContentType0="image/jpeg",
            MediaUrl1="https://api.twilio.com/m/1",
            MediaContentType1="application/pdf",
        )
    )
    assert whatsapp.channel == "whatsapp" and whatsapp.address == "whatsapp:+33639981111"
    assert whatsapp.body == ""
    assert whatsapp.media_dicts() == [
        {"url": "https://api.twilio.com/m/0", "content_type": "image/jpeg"},
        {"url": "https://api.twilio.com/m/1", "content_type": "application/pdf"},
    ]


def test_older_sms_names_still_work() -> None:
    """SmsSid without MessageSid (older Twilio requests), and an empty MessageSid is absent."""
    message = InboundMessage.parse({"SmsSid": SMS_SID, "MessageSid": "", "From": "+33639981111"})
    assert message.sid == SMS_SID


@pytest.mark.parametrize(
    ("change", "code", "says"),
    [
        ({"MessageSid": "", "SmsSid": ""}, "missing_field", "MessageSid is required"),
        ({"From": ""}, "missing_field", "From is required"),
        ({"MessageSid": "nope", "SmsSid": "nope"}, "invalid_message_sid", "MessageSid"),
        ({"From": "n'importe quoi"}, "invalid_phone", "From is not a valid phone number"),
        ({"NumMedia": "beaucoup"}, "invalid_media_count", "NumMedia"),
        ({"NumMedia": "11"}, "invalid_media_count", "between 0 and 10"),
    ],
)
def test_malformed_inbound_message_is_a_clear_bad_input(
    change: dict[str, str], code: str, says: str
) -> None:
    error = _refused(InboundMessage, _sms(**change))
    assert error.code == code and says in error.message


def test_call_start_knows_the_debtor_side_and_answering_machines() -> None:
    inbound = CallStart.parse(_call())
    assert not inbound.outbound and inbound.address == "+33639981111"
    outbound = CallStart.parse(
        _call(Direction="outbound-api", From=OURS, To="+447700900123", AnsweredBy="machine_start")
    )
    assert outbound.outbound and outbound.address == "+447700900123"
    assert outbound.machine and not outbound.fax
    assert CallStart.parse(_call(AnsweredBy="human")).machine is False


def test_a_withheld_caller_id_is_an_unknown_caller_not_an_error() -> None:
    assert CallStart.parse(_call(From="anonymous")).address is None
    # …but a call we placed must have a real number on the debtor's side.
    error = _refused(CallStart, _call(Direction="outbound-api", To="anonymous"))
    assert error.code == "invalid_phone"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"CallSid": "nope"}, "invalid_call_sid"),
        ({"CallSid": ""}, "invalid_call_sid"),
        ({"From": ""}, "missing_field"),
    ],
)
def test_malformed_call_is_a_clear_bad_input(change: dict[str, str], code: str) -> None:
    assert _refused(CallStart, _call(**change)).code == code


def test_gather_and_dial_results() -> None:
    keys = CallGather.parse(_call(Digits=" 1# ", SpeechResult=""))
    assert (keys.digits, keys.speech, keys.confidence) == ("1", "", None)
    speech = CallGather.parse(_call(SpeechResult=" je peux payer ", Confidence="0.91"))
    assert (speech.digits, speech.speech, speech.confidence) == ("", "je peux payer", "0.91")
    busy = CallDialResult.parse(_call(DialCallStatus="busy"))
    assert not busy.bridged and busy.dial_status == "busy"
    assert CallDialResult.parse(_call(DialCallStatus="completed", DialCallDuration="42")).bridged


def test_status_callbacks_are_routed_by_the_kind_of_sid() -> None:
    message = parse_status_callback(
        {"MessageSid": SMS_SID, "MessageStatus": "Delivered", "ErrorCode": ""}
    )
    assert isinstance(message, MessageStatusCallback)
    assert (message.sid, message.status, message.error_code) == (SMS_SID, "delivered", None)
    call = parse_status_callback(
        {"CallSid": CALL_SID, "CallStatus": "completed", "CallDuration": "63"}
    )
    assert isinstance(call, CallStatusCallback)
    assert (call.sid, call.status, call.duration_seconds) == (CALL_SID, "completed", 63)
    # A duration Twilio would never send is dropped, the status itself still counts.
    odd = CallStatusCallback.parse({"CallSid": CALL_SID, "CallStatus": "busy", "CallDuration": "x"})
    assert odd.duration_seconds is None


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"MessageStatus": "delivered"}, "MessageSid or CallSid is required"),
        ({"MessageSid": SMS_SID, "MessageStatus": ""}, "MessageStatus is required"),
        ({"CallSid": CALL_SID, "CallStatus": ""}, "CallStatus is required"),
    ],
)
def test_status_callback_without_its_ids_is_a_clear_bad_input(
    fields: dict[str, str], says: str
) -> None:
    with pytest.raises(BadInput) as caught:
        parse_status_callback(fields)
    assert caught.value.code == "missing_field" and caught.value.message == says
