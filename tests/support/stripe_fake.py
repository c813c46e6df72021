"""A faithful local fake of Stripe Checkout Sessions, for tests (localstripe has no Checkout).

`StripeFake` is a real HTTP server on 127.0.0.1 that the stripe client is pointed at (through the
`STRIPE_API_BASE` setting / `base_addresses`). It implements, with the object shapes of Stripe's
published API reference:

- `POST /v1/checkout/sessions` (form-encoded, bracket notation, Bearer key required, the same
  validation errors Stripe gives for the parameters we use, `Idempotency-Key` replay);
- `GET /v1/checkout/sessions/{id}` and `POST /v1/checkout/sessions/{id}/expire`;
- `GET /v1/mandates/{id}`, `GET /v1/payment_methods/{id}` and `POST .../detach` for the SEPA
  mandates and payment methods `complete_setup()` makes (localstripe has no SEPA), and the card
  methods `complete_card_setup()` makes when there is no upstream (with one, they are
  localstripe's);
- `POST /v1/payment_intents` confirmed off-session with one of those SEPA methods and its mandate
  (answered `processing`, with its pending Charge, as Stripe does for a SEPA debit; the checks and
  errors Stripe gives: method attached to the customer, mandate active and of that method, `eur`
  only, `Idempotency-Key` replay and reuse with other parameters), `GET /v1/payment_intents/{id}`
  and `GET /v1/charges/{id}` for those; card PaymentIntents still go to localstripe, except for
  a card `decline_card()` names: its charges are declined with Stripe's `card_error` (HTTP 402:
  the generic `code`, the issuer's `decline_code`, the failed PaymentIntent in
  `requires_payment_method` with its `last_payment_error`), which localstripe cannot give;
- every other `/v1/...` path is forwarded to `upstream` (localstripe) when given, so one base URL
  serves both Checkout and PaymentIntents/Customers/PaymentMethods.

Test helpers play the payer and Stripe's event delivery: `complete()` pays a session (creating the
Customer, PaymentMethod and a confirmed PaymentIntent in localstripe when an upstream is set),
`settle_debit()` / `fail_debit()` play the bank's answer to a SEPA debit (the PaymentIntent as
`payment_intent.succeeded` / `payment_intent.payment_failed` carry it), `decline_card()` the
issuer's refusal of a card kept on file,
`dispute()` builds the Dispute object a `charge.dispute.*` event carries, `event()` wraps an
object as a Stripe Event, `signed()` produces the payload and the
`Stripe-Signature` header (t=..., v1=HMAC-SHA256 of "t.payload" with the endpoint secret).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KNOWN_CREATE_PARAMS = {
    "mode",
    "line_items",
    "success_url",
    "cancel_url",
    "client_reference_id",
    "metadata",
    "expires_at",
    "locale",
    "payment_intent_data",
    "customer_creation",
    "customer_email",
    "customer",
    "payment_method_types",
    "currency",
    "expand",
    "ui_mode",
    "allowed_payment_method_types",
    "setup_intent_data",
}
KNOWN_INTENT_PARAMS = {
    "amount",
    "currency",
    "customer",
    "payment_method",
    "payment_method_types",
    "allowed_payment_method_types",
    "mandate",
    "off_session",
    "confirm",
    "metadata",
    "description",
    "expand",
}
# Stripe's SEPA Direct Debit failure codes and their `failure_message`s (docs: "SEPA Direct
# Debit payments", failed payments), as `last_payment_error` and the Charge carry them.
SEPA_FAILURE_MESSAGES = {
    "insufficient_funds": "The customer's account has insufficient funds to cover this payment.",
    "account_closed": "The customer's bank account has been closed.",
    "debit_not_authorized": "The customer has notified their bank that this payment was "
    "unauthorized.",
    "bank_account_restricted": "The customer's account cannot be used with the payment method.",
    "generic_could_not_process": "This payment could not be processed.",
}
# The `message` of Stripe's card errors, by decline code or error code (docs: error codes,
# decline codes, testing: declined payments).
CARD_ERROR_MESSAGES = {
    "card_declined": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "lost_card": "Your card has been declined.",
    "stolen_card": "Your card has been declined.",
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "processing_error": "An error occurred while processing your card. Try again in a little bit.",
    "authentication_required": "Your card was declined. This transaction requires authentication.",
}
MIN_EXPIRY, MAX_EXPIRY = 30 * 60, 24 * 60 * 60


class StripeApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        kind: str = "invalid_request_error",
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.param, self.code, self.kind = status, param, code, kind
        self.extra = extra or {}  # a card_error's decline_code, charge, payment_intent...

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.kind, "message": str(self)}
        if self.param:
            error["param"] = self.param
        if self.code:
            error["code"] = self.code
        return {"error": {**error, **self.extra}}


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def parse_form(body: str) -> dict[str, Any]:
    """Decode Stripe's form encoding: a[b][0][c]=v -> {"a": {"b": [{"c": "v"}]}}."""
    root: dict[str, Any] = {}
    for key, value in urllib.parse.parse_qsl(body, keep_blank_values=True):
        parts = [key.split("[", 1)[0]] + [p.rstrip("]") for p in key.split("[")[1:]]
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt_is_index = not last and parts[i + 1].isdigit()
            if isinstance(node, list):
                idx = int(part)
                while len(node) <= idx:
                    node.append(None)
                if last:
                    node[idx] = value
                else:
                    if node[idx] is None:
                        node[idx] = [] if nxt_is_index else {}
                    node = node[idx]
            else:
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, [] if nxt_is_index else {})
    return root


def _int(value: Any, param: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StripeApiError(400, f"Invalid integer: {value}", param=param) from None


class StripeFake:
    """Checkout Sessions served locally; other endpoints proxied to `upstream` (localstripe)."""

    def __init__(self, upstream: str | None = None) -> None:
        self.upstream = upstream.rstrip("/") if upstream else None
        self.sessions: dict[str, dict[str, Any]] = {}
        self.mandates: dict[str, dict[str, Any]] = {}
        self.sepa_methods: dict[str, dict[str, Any]] = {}
        # Card methods made by `complete_card_setup` when there is no upstream (localstripe).
        self.card_methods: dict[str, dict[str, Any]] = {}
        self.sepa_intents: dict[str, dict[str, Any]] = {}
        self.sepa_charges: dict[str, dict[str, Any]] = {}
        # Cards whose charges the issuer declines: payment method -> (code, decline_code).
        self.card_declines: dict[str, tuple[str, str | None]] = {}
        self.card_intents: dict[str, dict[str, Any]] = {}  # the declined PaymentIntents
        self.detached: list[str] = []
        self.requests: list[RecordedRequest] = []
        self._idempotent: dict[str, tuple[int, dict[str, Any]]] = {}
        # PaymentIntents: (status, body, the parameters first sent with the key).
        self._idempotent_intents: dict[str, tuple[int, dict[str, Any], dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        # Errors to answer to the next Checkout requests (one per request), e.g. an outage.
        self.fail_next: list[StripeApiError] = []

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> StripeFake:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._dispatch(self, "GET")

            def do_POST(self) -> None:
                fake._dispatch(self, "POST")

            def do_DELETE(self) -> None:
                fake._dispatch(self, "DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def reset(self) -> None:
        with self._lock:
            self.sessions.clear()
            self.mandates.clear()
            self.sepa_methods.clear()
            self.card_methods.clear()
            self.sepa_intents.clear()
            self.sepa_charges.clear()
            self.card_declines.clear()
            self.card_intents.clear()
            self.detached.clear()
            self.requests.clear()
            self._idempotent.clear()
            self._idempotent_intents.clear()
            self.fail_next = []

    def checkout_requests(self, method: str | None = None) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if r.path.startswith("/v1/checkout/sessions") and (method is None or r.method == method)
        ]

    def intent_requests(self) -> list[RecordedRequest]:
        """The PaymentIntent creations answered here (SEPA ones, and the charges of a card
        `decline_card()` names; other card ones go to localstripe)."""
        return [r for r in self.requests if r.path == "/v1/payment_intents"]

    # -- HTTP ------------------------------------------------------------------------------
    def _dispatch(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        path, _, query = handler.path.partition("?")
        headers = {k.lower(): v for k, v in handler.headers.items()}
        if self._is_sepa_intent_call(method, path, raw):
            params = parse_form(raw.decode()) if method == "POST" else {}
            with self._lock:
                self.requests.append(RecordedRequest(method, path, params, headers))
            try:
                status, body = self._sepa_intent_call(method, path, params, headers)
            except StripeApiError as exc:
                status, body = exc.status, exc.body()
            self._reply(handler, status, body)
            return
        local = self._sepa_object(method, path)
        if local is not None:
            self._reply(handler, 200, local)
            return
        if not path.startswith("/v1/checkout/sessions"):
            self._proxy(handler, method, handler.path, raw, headers)
            return
        params = parse_form(raw.decode() if method == "POST" else query)
        with self._lock:
            self.requests.append(RecordedRequest(method, path, params, headers))
        try:
            status, body = self._handle(method, path, params, headers)
        except StripeApiError as exc:
            status, body = exc.status, exc.body()
        payload = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.send_header("Request-Id", "req_" + secrets.token_hex(7))
        handler.end_headers()
        handler.wfile.write(payload)

    def _sepa_object(self, method: str, path: str) -> dict[str, Any] | None:
        """Mandates and SEPA payment methods made by `complete_setup` (localstripe has none)."""
        parts = path.strip("/").split("/")
        if method == "GET" and len(parts) == 3 and parts[1] == "mandates":
            return self.mandates.get(parts[2])
        local_methods = {**self.sepa_methods, **self.card_methods}
        if len(parts) >= 3 and parts[1] == "payment_methods" and parts[2] in local_methods:
            found = local_methods[parts[2]]
            if method == "POST" and parts[3:] == ["detach"]:
                found["customer"] = None
                self.detached.append(parts[2])
                for mandate in self.mandates.values():
                    if mandate["payment_method"] == parts[2]:
                        mandate["status"] = "inactive"
            return dict(found) if method == "GET" or parts[3:] == ["detach"] else None
        return None

    def _is_sepa_intent_call(self, method: str, path: str, raw: bytes) -> bool:
        """A PaymentIntent with one of our SEPA methods or a card we decline, or a SEPA intent or
        charge or a declined card intent we made."""
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/v1/payment_intents":
            paying = parse_form(raw.decode()).get("payment_method")
            return paying in self.sepa_methods or paying in self.card_declines
        if method == "GET" and len(parts) == 3 and parts[1] == "payment_intents":
            return parts[2] in self.sepa_intents or parts[2] in self.card_intents
        return (
            method == "GET"
            and len(parts) == 3
            and parts[1] == "charges"
            and (parts[2] in self.sepa_charges)
        )

    def _sepa_intent_call(
        self, method: str, path: str, params: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer sk_") and not auth.startswith("Bearer rk_"):
            raise StripeApiError(401, "You did not provide an API key.")
        parts = path.strip("/").split("/")
        if method == "GET":
            found = (
                self.sepa_intents.get(parts[2])
                or self.card_intents.get(parts[2])
                or self.sepa_charges[parts[2]]
            )
            return 200, json.loads(json.dumps(found))
        key = headers.get("idempotency-key")
        with self._lock:
            if key and key in self._idempotent_intents:
                status, body, first_params = self._idempotent_intents[key]
                if first_params != params:
                    raise StripeApiError(
                        400,
                        "Keys for idempotent requests can only be used with the same parameters "
                        "they were first used with. Try using a key other than "
                        f"'{key}' if you meant to execute a different request.",
                        kind="idempotency_error",
                    )
                return status, json.loads(json.dumps(body))
        try:
            if params.get("payment_method") in self.card_declines:
                self._decline_card_intent(params)
            result: tuple[int, dict[str, Any]] = (200, self._create_sepa_intent(params))
        except StripeApiError as exc:
            result = (exc.status, exc.body())  # Stripe replays errors under the same key too
        if key:
            with self._lock:
                self._idempotent_intents[key] = (*result, params)
        return result

    def _create_sepa_intent(self, params: dict[str, Any]) -> dict[str, Any]:
        """`POST /v1/payment_intents` with `confirm` for a SEPA Direct Debit PaymentMethod."""
        unknown = set(params) - KNOWN_INTENT_PARAMS
        if unknown:
            name = sorted(unknown)[0]
            raise StripeApiError(400, f"Received unknown parameter: {name}", param=name)
        amount = _int(params.get("amount"), "amount")
        if amount < 1:
            raise StripeApiError(
                400, "This value must be greater than or equal to 1.", param="amount"
            )
        currency = str(params.get("currency") or "").lower()
        if currency != "eur":
            raise StripeApiError(
                400,
                f"The currency provided ({currency}) is invalid. Payments with sepa_debit "
                "support the following currencies: eur.",
                param="currency",
            )
        method_id = params["payment_method"]
        method = self.sepa_methods[method_id]
        allowed = params.get("allowed_payment_method_types") or params.get("payment_method_types")
        if allowed is not None and "sepa_debit" not in allowed:
            raise StripeApiError(
                400,
                "The PaymentMethod provided (sepa_debit) is not allowed for this PaymentIntent.",
                param="payment_method",
                code="payment_intent_incompatible_payment_method",
            )
        customer = params.get("customer")
        if method["customer"] is None or customer != method["customer"]:
            raise StripeApiError(
                400,
                f"The provided PaymentMethod {method_id} was previously used without being "
                "attached to a Customer or was detached from a Customer, and may not be used "
                "again."
                if method["customer"] is None
                else f"The provided PaymentMethod {method_id} is not attached to the customer.",
                param="payment_method",
            )
        if params.get("confirm") != "true" or params.get("off_session") != "true":
            raise StripeApiError(
                400,
                "This fake only confirms off-session SEPA debits (confirm=true, off_session=true).",
            )
        mandate_id = params.get("mandate")
        mandate = self.mandates.get(mandate_id or "")
        if mandate is None:
            # Stripe needs `mandate` (or mandate_data) to confirm a sepa_debit PaymentIntent.
            raise StripeApiError(
                400,
                "A mandate is required to confirm a PaymentIntent with a sepa_debit "
                "PaymentMethod off-session.",
                param="mandate",
                code="resource_missing" if mandate_id else None,
            )
        if mandate["payment_method"] != method_id:
            raise StripeApiError(
                400,
                f"The mandate {mandate_id} is not associated with the PaymentMethod {method_id}.",
                param="mandate",
            )
        if mandate["status"] != "active":
            raise StripeApiError(
                400,
                f"The mandate {mandate_id} is {mandate['status']} and cannot be used.",
                param="mandate",
                code="payment_intent_mandate_invalid",
            )
        now = int(time.time())
        intent_id = "pi_" + secrets.token_hex(12)
        charge_id = "py_" + secrets.token_hex(12)  # SEPA charges are `py_` in Stripe
        self.sepa_charges[charge_id] = {
            "id": charge_id,
            "object": "charge",
            "amount": amount,
            "amount_captured": amount,
            "amount_refunded": 0,
            "balance_transaction": None,
            "captured": True,
            "created": now,
            "currency": currency,
            "customer": customer,
            "failure_code": None,
            "failure_message": None,
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "outcome": None,
            "paid": False,
            "payment_intent": intent_id,
            "payment_method": method_id,
            "payment_method_details": {
                "sepa_debit": {
                    "bank_code": method["sepa_debit"]["bank_code"],
                    "branch_code": method["sepa_debit"]["branch_code"],
                    "country": method["sepa_debit"]["country"],
                    "fingerprint": method["sepa_debit"]["fingerprint"],
                    "last4": method["sepa_debit"]["last4"],
                    "mandate": mandate_id,
                },
                "type": "sepa_debit",
            },
            "refunded": False,
            "status": "pending",
        }
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "application": None,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": "automatic",
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
            "confirmation_method": "automatic",
            "created": now,
            "currency": currency,
            "customer": customer,
            "description": params.get("description"),
            "last_payment_error": None,
            "latest_charge": charge_id,
            "livemode": False,
            "mandate": mandate_id,
            "metadata": params.get("metadata") or {},
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": method_id,
            "payment_method_options": {"sepa_debit": {}},
            "payment_method_types": ["sepa_debit"],
            "processing": None,
            "receipt_email": None,
            "setup_future_usage": None,
            "statement_descriptor": None,
            "status": "processing",
        }
        self.sepa_intents[intent_id] = intent
        return json.loads(json.dumps(intent))

    def _decline_card_intent(self, params: dict[str, Any]) -> None:
        """`POST /v1/payment_intents` confirmed off-session with a card `decline_card()` names:
        the issuer refuses it. Stripe answers HTTP 402 with a `card_error` carrying the generic
        `code`, the issuer's `decline_code` when it gave one, the failed Charge and the
        PaymentIntent back in `requires_payment_method` with the same `last_payment_error`
        (which `payment_intent.payment_failed` then carries)."""
        unknown = set(params) - KNOWN_INTENT_PARAMS
        if unknown:
            name = sorted(unknown)[0]
            raise StripeApiError(400, f"Received unknown parameter: {name}", param=name)
        if params.get("confirm") != "true" or params.get("off_session") != "true":
            raise StripeApiError(400, "This fake only declines confirmed off-session charges.")
        method_id = params["payment_method"]
        code, decline_code = self.card_declines[method_id]
        message = (
            CARD_ERROR_MESSAGES.get(decline_code or code) or CARD_ERROR_MESSAGES["card_declined"]
        )
        now = int(time.time())
        intent_id = "pi_" + secrets.token_hex(12)
        charge_id = "ch_" + secrets.token_hex(12)
        method = {
            **self.card_methods.get(method_id, {"id": method_id, "object": "payment_method"}),
            "type": "card",
        }
        error: dict[str, Any] = {
            "charge": charge_id,
            "code": code,
            "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
            "message": message,
            "payment_method": method,
            "type": "card_error",
        }
        if decline_code:
            error["decline_code"] = decline_code
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": _int(params.get("amount"), "amount"),
            "amount_received": 0,
            "canceled_at": None,
            "capture_method": "automatic",
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
            "confirmation_method": "automatic",
            "created": now,
            "currency": str(params.get("currency") or "").lower(),
            "customer": params.get("customer"),
            "description": params.get("description"),
            "last_payment_error": error,
            "latest_charge": charge_id,
            "livemode": False,
            "metadata": params.get("metadata") or {},
            "next_action": None,
            "payment_method": None,
            "payment_method_types": ["card"],
            "setup_future_usage": None,
            "status": "requires_payment_method",
        }
        with self._lock:
            self.card_intents[intent_id] = intent
        extra = {k: v for k, v in error.items() if k not in ("code", "message", "type")}
        raise StripeApiError(
            402,
            message,
            code=code,
            kind="card_error",
            extra={**extra, "payment_intent": json.loads(json.dumps(intent))},
        )

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _proxy(
        self,
        handler: BaseHTTPRequestHandler,
        method: str,
        path: str,
        raw: bytes,
        headers: dict[str, str],
    ) -> None:
        if self.upstream is None:
            status, payload = (
                404,
                json.dumps(
                    StripeApiError(404, f"Unrecognized request URL ({method}: {path}).").body()
                ).encode(),
            )
        else:
            forward = {
                k: v
                for k, v in headers.items()
                if k in ("authorization", "content-type", "idempotency-key", "stripe-version")
            }
            request = urllib.request.Request(
                self.upstream + path,
                data=raw if method == "POST" else None,
                headers=forward,
                method=method,
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status, payload = response.status, response.read()
            except urllib.error.HTTPError as exc:
                status, payload = exc.code, exc.read()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _handle(
        self, method: str, path: str, params: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer sk_") and not auth.startswith("Bearer rk_"):
            raise StripeApiError(401, "You did not provide an API key.")
        if self.fail_next:
            raise self.fail_next.pop(0)
        parts = path.strip("/").split("/")  # v1 checkout sessions [id] [expire]
        if method == "POST" and len(parts) == 3:
            key = headers.get("idempotency-key")
            with self._lock:
                if key and key in self._idempotent:
                    return self._idempotent[key]
            result = (200, self._create(params))
            if key:
                with self._lock:
                    self._idempotent[key] = result
            return result
        if len(parts) >= 4:
            session = self.sessions.get(parts[3])
            if session is None:
                raise StripeApiError(
                    404,
                    f"No such checkout.session: '{parts[3]}'",
                    param="id",
                    code="resource_missing",
                )
            if method == "GET" and len(parts) == 4:
                return 200, dict(session)
            if method == "POST" and len(parts) == 5 and parts[4] == "expire":
                if session["status"] != "open":
                    raise StripeApiError(
                        400,
                        f'Only Checkout Sessions with a status in ["open"] can be expired. '
                        f'This Checkout Session has a status of "{session["status"]}".',
                    )
                session.update(status="expired", url=None)
                return 200, dict(session)
        raise StripeApiError(404, f"Unrecognized request URL ({method}: {path}).")

    def _create(self, params: dict[str, Any]) -> dict[str, Any]:
        unknown = set(params) - KNOWN_CREATE_PARAMS
        if unknown:
            name = sorted(unknown)[0]
            raise StripeApiError(400, f"Received unknown parameter: {name}", param=name)
        mode = params.get("mode")
        if mode not in ("payment", "setup", "subscription"):
            raise StripeApiError(400, "Missing required param: mode.", param="mode")
        if not params.get("success_url") and params.get("ui_mode", "hosted") == "hosted":
            raise StripeApiError(400, "Missing required param: success_url.", param="success_url")
        now = int(time.time())
        expires_at = _int(params.get("expires_at", now + MAX_EXPIRY), "expires_at")
        if not now + MIN_EXPIRY - 60 <= expires_at <= now + MAX_EXPIRY + 60:
            raise StripeApiError(
                400,
                "The `expires_at` timestamp must be between 30 minutes and 24 hours from "
                "Checkout Session creation.",
                param="expires_at",
            )
        amount, currency = 0, None
        items = params.get("line_items") or []
        if mode == "payment" and not items:
            raise StripeApiError(
                400, "You must provide at least one line item.", param="line_items"
            )
        for i, item in enumerate(items):
            quantity = _int(item.get("quantity"), f"line_items[{i}][quantity]")
            price = item.get("price_data") or {}
            if not price:
                raise StripeApiError(
                    400,
                    "You must specify either `price` or `price_data`.",
                    param=f"line_items[{i}]",
                )
            if not (price.get("product_data") or {}).get("name") and not price.get("product"):
                raise StripeApiError(
                    400,
                    "Missing required param: line_items[0][price_data][product_data][name].",
                    param=f"line_items[{i}][price_data][product_data][name]",
                )
            unit = _int(price.get("unit_amount"), f"line_items[{i}][price_data][unit_amount]")
            item_currency = str(price.get("currency", "")).lower()
            if currency and item_currency != currency:
                raise StripeApiError(
                    400, "All line items must use the same currency.", param="line_items"
                )
            currency = item_currency
            amount += unit * quantity
        creation = params.get("customer_creation")
        if creation is not None and creation not in ("always", "if_required"):
            raise StripeApiError(
                400, f"Invalid customer_creation: {creation}", param="customer_creation"
            )
        session_id = "cs_test_" + secrets.token_urlsafe(45).replace("-", "a").replace("_", "b")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "after_expiration": None,
            "allow_promotion_codes": None,
            "amount_subtotal": amount,
            "amount_total": amount,
            "automatic_tax": {"enabled": False, "liability": None, "status": None},
            "billing_address_collection": None,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "client_secret": None,
            "consent": None,
            "consent_collection": None,
            "created": now,
            "currency": currency,
            "custom_fields": [],
            "custom_text": {
                "after_submit": None,
                "shipping_address": None,
                "submit": None,
                "terms_of_service_acceptance": None,
            },
            "customer": params.get("customer"),
            "customer_creation": creation or ("if_required" if mode == "payment" else None),
            "customer_details": None,
            "customer_email": params.get("customer_email"),
            "expires_at": expires_at,
            "invoice": None,
            "invoice_creation": None,
            "livemode": False,
            "locale": params.get("locale"),
            "metadata": params.get("metadata") or {},
            "mode": mode,
            "payment_intent": None,  # created when the customer pays (API 2022-08-01 and later)
            "payment_link": None,
            "payment_method_collection": "if_required",
            "payment_method_options": {},
            "payment_method_types": params.get("allowed_payment_method_types")
            or params.get("payment_method_types")
            or ["card"],
            "payment_status": "unpaid",
            "phone_number_collection": {"enabled": False},
            "recovered_from": None,
            "setup_intent": None,
            "shipping_address_collection": None,
            "shipping_cost": None,
            "shipping_details": None,
            "shipping_options": [],
            "status": "open",
            "submit_type": None,
            "subscription": None,
            "success_url": params.get("success_url"),
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": params.get("ui_mode", "hosted"),
            "url": f"{self.base_url}/c/pay/{session_id}",
            # Not part of the returned object in Stripe; kept to build the PaymentIntent.
            "_payment_intent_data": params.get("payment_intent_data") or {},
            "_setup_intent_data": params.get("setup_intent_data") or {},
        }
        with self._lock:
            self.sessions[session_id] = session
        return {k: v for k, v in session.items() if not k.startswith("_")}

    # -- test helpers ----------------------------------------------------------------------
    def _upstream_call(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        api_key: str = "sk_test_fake",
    ) -> dict[str, Any]:
        assert self.upstream is not None
        data = urllib.parse.urlencode(_flatten(params or {})).encode() if params else None
        request = urllib.request.Request(
            self.upstream + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {api_key}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def complete(
        self, session_id: str, *, card: str = "4242424242424242", email: str = "payer@example.com"
    ) -> dict[str, Any]:
        """Play the payer: pay the session with `card`; returns the completed session object.

        With an upstream (localstripe), the PaymentIntent, PaymentMethod and (when the card is
        kept for later) the Customer are real localstripe objects.
        """
        session = self.sessions[session_id]
        if session["status"] != "open":
            raise StripeApiError(400, f"session is {session['status']}")
        intent_data = session["_payment_intent_data"]
        keep_card = intent_data.get("setup_future_usage") == "off_session"
        create_customer = keep_card or session["customer_creation"] == "always"
        customer = session["customer"]
        if self.upstream is None:
            intent_id = "pi_" + secrets.token_hex(12)
            if create_customer and customer is None:
                customer = "cus_" + secrets.token_hex(7)
        else:
            if create_customer and customer is None:
                customer = self._upstream_call("POST", "/v1/customers", {"email": email})["id"]
            method = self._upstream_call(
                "POST",
                "/v1/payment_methods",
                {
                    "type": "card",
                    "card": {"number": card, "exp_month": "12", "exp_year": "2034", "cvc": "123"},
                },
            )["id"]
            if customer:
                self._upstream_call(
                    "POST", f"/v1/payment_methods/{method}/attach", {"customer": customer}
                )
            intent_params: dict[str, Any] = {
                "amount": session["amount_total"],
                "currency": session["currency"],
                "payment_method": method,
                "confirm": "true",
                "metadata": intent_data.get("metadata") or {},
            }
            if customer:
                intent_params["customer"] = customer
            intent_id = self._upstream_call("POST", "/v1/payment_intents", intent_params)["id"]
        session.update(
            customer=customer,
            customer_details={
                "email": email,
                "name": None,
                "phone": None,
                "address": None,
                "tax_exempt": "none",
                "tax_ids": [],
            },
            payment_intent=intent_id,
            payment_status="paid",
            status="complete",
            url=None,
        )
        return {k: v for k, v in session.items() if not k.startswith("_")}

    def complete_setup(self, session_id: str, *, last4: str = "3000") -> dict[str, Any]:
        """Play the debtor on a setup-mode SEPA session: the IBAN accepted, a Customer, a
        `sepa_debit` PaymentMethod and an active multi-use Mandate; returns the SetupIntent as
        `setup_intent.succeeded` carries it (shapes from Stripe's API reference)."""
        session = self.sessions[session_id]
        now = int(time.time())
        customer = "cus_" + secrets.token_hex(7)
        method_id = "pm_" + secrets.token_hex(12)
        mandate_id = "mandate_" + secrets.token_hex(12)
        setup_id = "seti_" + secrets.token_hex(12)
        self.sepa_methods[method_id] = {
            "id": method_id,
            "object": "payment_method",
            "billing_details": {"address": None, "email": None, "name": "Debtor", "phone": None},
            "created": now,
            "customer": customer,
            "livemode": False,
            "metadata": {},
            "sepa_debit": {
                "bank_code": "37040044",
                "branch_code": "",
                "country": "DE",
                "fingerprint": secrets.token_hex(8),
                "generated_from": {"charge": None, "setup_attempt": None},
                "last4": last4,
            },
            "type": "sepa_debit",
        }
        self.mandates[mandate_id] = {
            "id": mandate_id,
            "object": "mandate",
            "customer_acceptance": {
                "accepted_at": now,
                "online": {"ip_address": "127.0.0.1", "user_agent": "test"},
                "type": "online",
            },
            "livemode": False,
            "multi_use": {},
            "payment_method": method_id,
            "payment_method_details": {
                "sepa_debit": {
                    "reference": secrets.token_hex(8).upper(),
                    "url": f"{self.base_url}/mandates/{mandate_id}",
                },
                "type": "sepa_debit",
            },
            "status": "active",
            "type": "multi_use",
        }
        session.update(customer=customer, setup_intent=setup_id, status="complete", url=None)
        return {
            "id": setup_id,
            "object": "setup_intent",
            "application": None,
            "cancellation_reason": None,
            "client_secret": f"{setup_id}_secret_{secrets.token_hex(8)}",
            "created": now,
            "customer": customer,
            "description": None,
            "last_setup_error": None,
            "latest_attempt": "setatt_" + secrets.token_hex(12),
            "livemode": False,
            "mandate": mandate_id,
            "metadata": (session["_setup_intent_data"] or {}).get("metadata") or {},
            "next_action": None,
            "payment_method": method_id,
            "payment_method_options": {},
            "payment_method_types": ["sepa_debit"],
            "single_use_mandate": None,
            "status": "succeeded",
            "usage": "off_session",
        }

    def complete_card_setup(
        self, session_id: str, *, card: str = "4242424242424242"
    ) -> dict[str, Any]:
        """Play the debtor on a setup-mode card session: a Customer and a card PaymentMethod
        attached to it (real localstripe objects when an upstream is set, so that off-session
        charges of the card then work there), and the SetupIntent as `setup_intent.succeeded`
        carries it: a card's has no mandate (shapes from Stripe's API reference)."""
        session = self.sessions[session_id]
        now = int(time.time())
        if self.upstream is not None:
            customer = self._upstream_call("POST", "/v1/customers", {"email": "d@example.com"})[
                "id"
            ]
            method_id = self._upstream_call(
                "POST",
                "/v1/payment_methods",
                {
                    "type": "card",
                    "card": {"number": card, "exp_month": "12", "exp_year": "2034", "cvc": "123"},
                },
            )["id"]
            self._upstream_call(
                "POST", f"/v1/payment_methods/{method_id}/attach", {"customer": customer}
            )
        else:
            customer = "cus_" + secrets.token_hex(7)
            method_id = "pm_" + secrets.token_hex(12)
            self.card_methods[method_id] = {
                "id": method_id,
                "object": "payment_method",
                "card": {"brand": "visa", "exp_month": 12, "exp_year": 2034, "last4": card[-4:]},
                "created": now,
                "customer": customer,
                "livemode": False,
                "metadata": {},
                "type": "card",
            }
        setup_id = "seti_" + secrets.token_hex(12)
        session.update(customer=customer, setup_intent=setup_id, status="complete", url=None)
        return {
            "id": setup_id,
            "object": "setup_intent",
            "client_secret": f"{setup_id}_secret_{secrets.token_hex(8)}",
            "created": now,
            "customer": customer,
            "last_setup_error": None,
            "livemode": False,
            "mandate": None,
            "metadata": (session["_setup_intent_data"] or {}).get("metadata") or {},
            "next_action": None,
            "payment_method": method_id,
            "payment_method_types": ["card"],
            "single_use_mandate": None,
            "status": "succeeded",
            "usage": "off_session",
        }

    def intent(self, intent_id: str) -> dict[str, Any]:
        """The PaymentIntent as this fake (SEPA, a declined card) or localstripe holds it (for
        payment_intent.* events)."""
        for held in (self.sepa_intents, self.card_intents):
            if intent_id in held:
                return json.loads(json.dumps(held[intent_id]))
        return self._upstream_call("GET", f"/v1/payment_intents/{intent_id}")

    def decline_card(
        self, payment_method_id: str, code: str = "card_declined", decline_code: str | None = None
    ) -> None:
        """Play the card's issuer: every later off-session charge of this card (one kept on
        file, attached to its customer) is declined with Stripe's error `code` and, when given,
        the issuer's `decline_code` (e.g. card_declined / insufficient_funds, or expired_card
        alone, as Stripe's test cards do)."""
        with self._lock:
            self.card_declines[payment_method_id] = (code, decline_code)

    def settle_debit(self, intent_id: str) -> dict[str, Any]:
        """Play the bank: the SEPA debit went through (days after it was `processing`). Returns
        the PaymentIntent as `payment_intent.succeeded` carries it."""
        with self._lock:
            intent = self.sepa_intents[intent_id]
            if intent["status"] != "processing":
                raise StripeApiError(400, f"payment intent is {intent['status']}")
            intent.update(status="succeeded", amount_received=intent["amount"])
            self.sepa_charges[intent["latest_charge"]].update(
                status="succeeded",
                paid=True,
                outcome={"network_status": "approved_by_network", "type": "authorized"},
            )
            return json.loads(json.dumps(intent))

    def fail_debit(self, intent_id: str, code: str) -> dict[str, Any]:
        """Play the bank: the SEPA debit is returned with Stripe's failure `code`, while it was
        `processing` or after it `succeeded` (a late return). Returns the PaymentIntent as
        `payment_intent.payment_failed` carries it: back to `requires_payment_method`, nothing
        received, `last_payment_error` naming the code and the PaymentMethod."""
        message = SEPA_FAILURE_MESSAGES[code]
        with self._lock:
            intent = self.sepa_intents[intent_id]
            if intent["status"] not in ("processing", "succeeded"):
                raise StripeApiError(400, f"payment intent is {intent['status']}")
            charge = self.sepa_charges[intent["latest_charge"]]
            charge.update(status="failed", paid=False, failure_code=code, failure_message=message)
            method = self.sepa_methods[intent["payment_method"]]
            intent.update(
                status="requires_payment_method",
                amount_received=0,
                payment_method=None,
                last_payment_error={
                    "charge": charge["id"],
                    "code": code,
                    "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
                    "message": message,
                    "payment_method": dict(method),
                    "type": "card_error",
                },
            )
            return json.loads(json.dumps(intent))

    @staticmethod
    def dispute(
        intent_id: str,
        *,
        amount: int,
        currency: str = "eur",
        method: str = "card",
        status: str = "needs_response",
        reason: str = "general",
        dispute_id: str | None = None,
    ) -> dict[str, Any]:
        """A Dispute as Stripe's API reference shows it. `payment_method_details` names a card
        (`brand`, `case_type`, `network_reason_code`); Stripe's published enum of its `type` has
        no `sepa_debit`, so a SEPA debit's dispute carries none (and the handler reads the method
        from its own payment row, never from here)."""
        now = int(time.time())
        details = (
            {
                "card": {"brand": "visa", "case_type": "chargeback", "network_reason_code": "10.4"},
                "type": "card",
            }
            if method == "card"
            else None
        )
        return {
            "id": dispute_id or "du_" + secrets.token_hex(12),
            "object": "dispute",
            "amount": amount,
            "balance_transactions": [],
            "charge": "ch_" + secrets.token_hex(12),
            "created": now,
            "currency": currency,
            "enhanced_eligibility_types": [],
            "evidence": {"uncategorized_text": None, "customer_communication": None},
            "evidence_details": {
                "due_by": now + 7 * 86400,
                "enhanced_eligibility": {},
                "has_evidence": False,
                "past_due": False,
                "submission_count": 0,
            },
            "is_charge_refundable": False,
            "livemode": False,
            "metadata": {},
            "network_reason_code": None,
            "payment_intent": intent_id,
            "payment_method_details": details,
            "reason": reason,
            "status": status,
        }

    @staticmethod
    def event(
        kind: str, obj: dict[str, Any], *, event_id: str | None = None, created: int | None = None
    ) -> dict[str, Any]:
        return {
            "id": event_id or "evt_" + secrets.token_hex(12),
            "object": "event",
            "api_version": "2024-06-20",
            "created": created or int(time.time()),
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": kind,
        }

    @staticmethod
    def signed(
        event: dict[str, Any], secret: str, *, timestamp: int | None = None
    ) -> tuple[bytes, str]:
        """(payload, Stripe-Signature header) exactly as Stripe signs webhook deliveries."""
        payload = json.dumps(event, indent=2).encode()
        timestamp = int(time.time()) if timestamp is None else timestamp
        digest = hmac.new(
            secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256
        ).hexdigest()
        return payload, f"t={timestamp},v1={digest}"


def _flatten(params: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else key
        if isinstance(value, dict):
            pairs.extend(_flatten(value, name))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                pairs.extend(_flatten({str(i): item}, name))
        else:
            pairs.append((name, str(value)))
    return pairs
