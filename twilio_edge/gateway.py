"""TwilioGateway: the OutboundGateway the core uses to text and call debtors.

Everything goes through the official twilio client, pointed at `TWILIO_API_BASE`. Rules enforced
here, whatever the caller: opted-out addresses are never contacted; WhatsApp outside the 24-hour
session window uses the approved template; the first message on each channel says it comes from
an automated assistant (`relance.compliance.disclosure`); every attempt (sent or failed) is
stored as a Message and audited; Twilio errors become `DeliveryError` with `retryable` set for the dunning engine.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlencode

import requests
from sqlalchemy.orm import Session
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from relance import audit
from relance.compliance import disclosure
from relance.contacts import service as contacts
from relance.conversations import whatsapp_window
from relance.conversations.ports import DeliveryError
from relance.db.base import utcnow
from relance.db.models import Contact, Conversation, Message
from relance.db.models.enums import Channel, Direction, MessageStatus
from relance.nlg.renderer import render
from relance.nlg.templates_store import active_templates
from relance.settings import Settings, get_settings
from twilio_edge import withheld
from twilio_edge.splitting import split_text
from twilio_edge.statuses import MESSAGE_STATUS
from twilio_edge.twilio_http import BaseUrlHttpClient

log = logging.getLogger(__name__)

HTTP_TIMEOUT_SECONDS = 15.0
# Twilio error codes that say "this address will not work": flag the contact, try another channel.
UNREACHABLE_CODES = {21211, 21214, 21217, 21401, 21407, 21408, 21612, 21614, 63003, 63024}
# The carrier (or WhatsApp) says the recipient unsubscribed: record it as an opt-out.
UNSUBSCRIBED_CODES = {21610}
MACHINE_DETECTION = "Enable"


class TwilioGateway:
    def __init__(self, settings: Settings | None = None, client: Client | None = None) -> None:
        self.settings = settings or get_settings()
        self.client = client or Client(
            self.settings.twilio_account_sid,
            self.settings.twilio_auth_token,
            http_client=BaseUrlHttpClient(self.settings.twilio_api_base, HTTP_TIMEOUT_SECONDS),
        )

    # -- texts ---------------------------------------------------------------------------------

    def send_text(
        self,
        session: Session,
        *,
        conversation: Conversation,
        contact: Contact,
        text: str,
        author: str,
        first_contact_template: bool = False,
    ) -> Message:
        """Send (split if long); returns the first stored Message, one row per Twilio message."""
        channel = Channel.WHATSAPP if contact.channel == Channel.WHATSAPP else Channel.SMS
        to = contact.address
        self._refuse_if_opted_out(session, conversation, contact, channel, to)
        if channel == Channel.WHATSAPP and (
            first_contact_template or not whatsapp_window.is_open(session, conversation.id, to)
        ):
            return self._send_whatsapp_template(session, conversation, contact, text, author)
        # First message on this channel: it says it comes from an automated assistant.
        try:
            text = disclosure.disclose_first(session, conversation, channel, text)
        except disclosure.DisclosureMissing as exc:
            raise self._no_disclosure(session, conversation, contact, channel, exc) from exc
        segments = split_text(text)
        if not segments:
            raise ValueError("refusing to send an empty text")
        sender = (
            self.settings.twilio_whatsapp_from
            if channel == Channel.WHATSAPP
            else self.settings.twilio_sms_from
        )
        messages = [
            self._create_message(
                session,
                conversation,
                contact,
                channel=channel,
                author=author,
                body=segment,
                params={"to": to, "from_": sender, "body": segment},
                extra={"segment": i, "segments": len(segments)} if len(segments) > 1 else None,
            )
            for i, segment in enumerate(segments, start=1)
        ]
        disclosure.mark_disclosed(conversation, channel)
        return messages[0]

    def _send_whatsapp_template(
        self, session: Session, conversation: Conversation, contact: Contact, text: str, author: str
    ) -> Message:
        """Outside the session window only an approved template may be sent; it invites a reply.

        The stored body is our local copy of the template (transcript = what the debtor saw); the
        text we meant to send is held on it and released when the debtor replies. Texts sent in
        the same burst join the open template instead of sending it again.
        """
        pending = withheld.open_template(session, conversation, contact.address)
        if pending is not None:
            withheld.hold(pending, text)
            session.flush()
            audit.record(
                session,
                actor=author,
                action="message.withheld_until_reply",
                entity=pending,
                debtor_id=conversation.debtor_id,
                channel=Channel.WHATSAPP,
            )
            return pending
        return self._template_holding(session, conversation, contact, text, author, row=None)

    def _template_holding(
        self,
        session: Session,
        conversation: Conversation,
        contact: Contact,
        text: str,
        author: str,
        *,
        row: Message | None,
    ) -> Message:
        """Send the approved template with `text` held on it: a new row, or `row` itself (a
        reply retry's free text whose window closed: the same row becomes the template)."""
        variables = {"1": self.settings.creditor_name}
        local_copy = render(
            active_templates(session),
            "utter_whatsapp_first_contact",
            language=conversation.language,
            channel=Channel.WHATSAPP,
            variables={"creditor_name": self.settings.creditor_name},
        )
        try:  # an approved template cannot be amended: without the disclosure it is refused
            disclosure.require(session, conversation, Channel.WHATSAPP, local_copy)
        except disclosure.DisclosureMissing as exc:
            raise self._no_disclosure(
                session, conversation, contact, Channel.WHATSAPP, exc
            ) from exc
        params: dict[str, Any] = {
            "to": contact.address,
            "from_": self.settings.twilio_whatsapp_from,
            "content_sid": self.settings.twilio_whatsapp_template_sid,
            "content_variables": json.dumps(variables),
        }
        extra: dict[str, Any] = {
            "template": True,
            "content_sid": self.settings.twilio_whatsapp_template_sid,
            "content_variables": variables,
            "withheld_texts": [text],
        }
        if row is None:
            message = self._create_message(
                session,
                conversation,
                contact,
                channel=Channel.WHATSAPP,
                author=author,
                body=local_copy,
                params=params,
                extra=extra,
            )
        else:
            # The transcript shows what the debtor gets (the template); the text waits on it.
            row.body = local_copy
            row.extra = {**(row.extra or {}), **extra}
            row.status, row.error_code = MessageStatus.QUEUED, None
            message = self._submit(session, conversation, contact, row, params)
        disclosure.mark_disclosed(conversation, Channel.WHATSAPP)
        return message

    @staticmethod
    def _no_disclosure(
        session: Session,
        conversation: Conversation,
        contact: Contact,
        channel: str,
        exc: disclosure.DisclosureMissing,
    ) -> DeliveryError:
        """The wording cannot say it is an automated assistant: audited, nothing sent."""
        audit.record(
            session,
            actor="system",
            action="message.blocked_no_ai_disclosure",
            entity=contact,
            debtor_id=conversation.debtor_id,
            channel=channel,
            why=str(exc),
        )
        return DeliveryError(str(exc), retryable=False, code="no_ai_disclosure")

    def _create_message(
        self,
        session: Session,
        conversation: Conversation,
        contact: Contact,
        *,
        channel: str,
        author: str,
        body: str,
        params: dict[str, Any],
        extra: dict[str, Any] | None,
    ) -> Message:
        message = Message(
            conversation_id=conversation.id,
            direction=Direction.OUTBOUND,
            channel=channel,
            author=author,
            body=body,
            address=contact.address,
            status=MessageStatus.QUEUED,
            extra=extra,
            created_at=utcnow(),
        )
        return self._submit(session, conversation, contact, message, params)

    def resend_text(self, session: Session, *, message: Message, contact: Contact) -> Message:
        """The reply retry's attempt: the same row, sent again with what it was sent with (its
        body, or the WhatsApp template it stands for). Opted-out addresses are refused as ever.

        WhatsApp free text whose 24-hour window closed while the reply waited (the debtor's last
        message is now older) may no longer go out as such (Twilio: 63016): as for any text
        outside the window, the approved template is sent, on this same row, with the text held
        on it and delivered when the debtor answers (`withheld`)."""
        conversation = message.conversation
        self._refuse_if_opted_out(session, conversation, contact, message.channel, contact.address)
        extra = message.extra or {}
        if (
            message.channel == Channel.WHATSAPP
            and not extra.get("template")
            and not whatsapp_window.is_open(session, conversation.id, contact.address)
        ):
            audit.record(
                session,
                actor="system",
                action="message.window_closed_template",
                entity=message,
                debtor_id=conversation.debtor_id,
                channel=Channel.WHATSAPP,
            )
            return self._template_holding(
                session, conversation, contact, message.body, message.author, row=message
            )
        sender = (
            self.settings.twilio_whatsapp_from
            if message.channel == Channel.WHATSAPP
            else self.settings.twilio_sms_from
        )
        params: dict[str, Any] = {"to": contact.address, "from_": sender}
        if extra.get("template"):
            params["content_sid"] = extra["content_sid"]
            params["content_variables"] = json.dumps(extra["content_variables"])
        else:
            params["body"] = message.body
        message.status = MessageStatus.QUEUED
        message.error_code = None
        return self._submit(session, conversation, contact, message, params)

    def _submit(
        self,
        session: Session,
        conversation: Conversation,
        contact: Contact,
        message: Message,
        params: dict[str, Any],
    ) -> Message:
        """One Messages.json call for `message`; the row records the outcome either way."""
        try:
            resource = self.client.messages.create(
                status_callback=self._url("/twilio/status"), **params
            )
        except (TwilioException, requests.RequestException) as exc:
            error = to_delivery_error(exc)
            message.status = MessageStatus.FAILED
            message.error_code = error.code
            session.add(message)
            session.flush()
            error.message_id = message.id
            self._after_failure(session, contact, message, error)
            raise error from exc
        message.provider_id = resource.sid
        message.status = MESSAGE_STATUS.get(str(resource.status or "queued"), MessageStatus.QUEUED)
        session.add(message)
        session.flush()
        audit.record(
            session,
            actor=message.author,
            action="message.sent",
            entity=message,
            debtor_id=conversation.debtor_id,
            channel=message.channel,
            to=contact.address,
            provider_id=resource.sid,
            template=bool(message.extra and message.extra.get("template")),
        )
        return message

    # -- calls ---------------------------------------------------------------------------------

    def place_call(
        self, session: Session, *, conversation: Conversation, contact: Contact, purpose: str
    ) -> Message:
        """Dial out with answering-machine detection; /twilio/voice drives the call from there."""
        if contact.channel == Channel.WHATSAPP:
            raise DeliveryError(
                "cannot call a WhatsApp address", retryable=False, code="not_a_phone"
            )
        self._refuse_if_opted_out(session, conversation, contact, Channel.VOICE, contact.address)
        message = Message(
            conversation_id=conversation.id,
            direction=Direction.OUTBOUND,
            channel=Channel.VOICE,
            author="bot",
            body="",
            address=contact.address,
            status=MessageStatus.QUEUED,
            extra={"kind": "call", "purpose": purpose},
            created_at=utcnow(),
        )
        try:
            call = self.client.calls.create(
                to=contact.address,
                from_=self.settings.twilio_voice_from,
                url=self._url("/twilio/voice") + "?" + urlencode({"purpose": purpose}),
                method="POST",
                status_callback=self._url("/twilio/voice/status"),
                status_callback_method="POST",
                status_callback_event=["initiated", "ringing", "answered", "completed"],
                machine_detection=MACHINE_DETECTION,
            )
        except (TwilioException, requests.RequestException) as exc:
            error = to_delivery_error(exc)
            message.status = MessageStatus.FAILED
            message.error_code = error.code
            session.add(message)
            session.flush()
            self._after_failure(session, contact, message, error)
            raise error from exc
        message.provider_id = call.sid
        message.extra = {**(message.extra or {}), "call_status": str(call.status or "queued")}
        session.add(message)
        session.flush()
        audit.record(
            session,
            actor="bot",
            action="call.placed",
            entity=message,
            debtor_id=conversation.debtor_id,
            to=contact.address,
            provider_id=call.sid,
            purpose=purpose,
        )
        return message

    # -- shared --------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self.settings.public_base_url.rstrip("/") + path

    def _refuse_if_opted_out(
        self, session: Session, conversation: Conversation, contact: Contact, channel: str, to: str
    ) -> None:
        if (
            contact.opted_out_at is None
            and contact.consent
            and not contacts.is_opted_out(session, channel, to)
        ):
            return
        audit.record(
            session,
            actor="system",
            action="message.blocked_opted_out",
            entity=contact,
            debtor_id=conversation.debtor_id,
            channel=channel,
            to=to,
        )
        raise DeliveryError(f"{channel} {to} opted out", retryable=False, code="opted_out")

    def _after_failure(
        self, session: Session, contact: Contact, message: Message, error: DeliveryError
    ) -> None:
        log.warning("twilio send to contact %s failed: %s (%s)", contact.id, error, error.code)
        audit.record(
            session,
            actor="system",
            action="message.send_failed",
            entity=message,
            debtor_id=contact.debtor_id,
            channel=message.channel,
            error_code=error.code,
            retryable=error.retryable,
        )
        code = int(error.code) if error.code and error.code.isdigit() else None
        if code in UNSUBSCRIBED_CODES:
            contacts.opt_out(session, contact, source="carrier", keyword=None)
        elif code in UNREACHABLE_CODES:
            contacts.record_failure(session, contact, error_code=error.code, reference=None)


def to_delivery_error(exc: Exception) -> DeliveryError:
    """429, 5xx and transport failures are worth retrying; other Twilio errors are final."""
    if isinstance(exc, TwilioRestException):
        retryable = exc.status == 429 or exc.status >= 500
        code = str(exc.code) if exc.code else str(exc.status)
        return DeliveryError(f"twilio {exc.status}: {exc.msg}", retryable=retryable, code=code)
    if isinstance(exc, requests.Timeout):
        return DeliveryError("twilio timed out", retryable=True, code="timeout")
    if isinstance(exc, requests.RequestException):
        return DeliveryError(f"twilio unreachable: {exc}", retryable=True, code="network")
    return DeliveryError(f"twilio error: {exc}", retryable=True, code="twilio_error")
