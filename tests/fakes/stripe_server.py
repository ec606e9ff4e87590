"""A Stripe look-alike on 127.0.0.1, so tests drive the official SDK over real HTTP.

It speaks the part of Stripe's v1 wire format Paydesk uses, the way the SDK expects it:
form-encoded bodies with nested keys (`payment_method_data[card][token]=tok_visa`,
`metadata[k]=v`, `expand[0]=latest_charge`), `Authorization: Bearer <secret key>` (401 otherwise),
JSON objects carrying `object` and prefixed ids, and errors as
`{"error": {"type", "code", "decline_code", "message", "param", ...}}` with Stripe's HTTP statuses.

Endpoints: POST /v1/payment_intents (create, optionally confirm), GET /v1/payment_intents/{id},
POST /v1/payment_intents/{id}/capture, POST /v1/payment_intents/{id}/cancel,
GET /v1/payment_intents/search, POST /v1/refunds, GET /v1/tokens/{id}, GET /v1/payment_methods/{id},
and payouts (POST /v1/payouts, GET /v1/payouts[/{id}]: tests/fakes/stripe_payouts.py).

An unknown token or PaymentMethod is answered as Stripe answers it: `invalid_request_error` with
code `resource_missing` ("No such token: 'tok_x'"), 400 when a PaymentIntent names it, 404 when it
is retrieved; nothing is created.

Idempotency works as Stripe documents it for POSTs: the first result for an `Idempotency-Key` is
stored (declines included, parameter validation errors not) and a repeat with the same endpoint and
parameters gets it back with `Idempotent-Replayed: true`; the same key on another endpoint or with
other parameters is a 400 `idempotency_error`. Keys are global to the account, like Stripe's.

Test cards, as tokens (`tok_visa`) or test PaymentMethods (`pm_card_visa`): `visa` (4242) and
`mastercard` (4444) succeed; `chargeDeclined` is a 402 `card_declined` (decline_code
`generic_decline`); `chargeDeclinedInsufficientFunds` a 402 `card_declined` with decline_code
`insufficient_funds`; `riskLevelElevated` succeeds with `outcome.risk_level: "elevated"`.
`create_token(card)` / `create_payment_method(card)` mint a token (`tok_1…`) or PaymentMethod
(`pm_1…`) of a test card, as a client-side tokenization would: ids that are not test names.

Scripting (tests/fakes/threaded_fake.py; each applies to the next n requests that pass
authentication): `fail_next(n, status=500)`, `fail_after_charge_next(n)` (the work is stored under
the idempotency key, the answer is a 500), `hang_next(n, seconds)`, `recover()`.
Inspection: `requests` (every request received, in order), `charges_made` (PaymentIntents
created), `payment_intent(id)` and `refunds` (the fake's own state).
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.fakes.stripe_payouts import FakeStripePayouts
from tests.fakes.threaded_fake import QuietServer, ThreadedFake

DEFAULT_API_KEY = "sk_test_paydesk_fake"

Params = dict[str, Any]


@dataclass(frozen=True)
class TestCard:
    brand: str
    last4: str
    decline_code: str = ""  # empty: the issuer approves
    decline_message: str = ""
    risk_level: str = "normal"


TEST_CARDS = {
    "visa": TestCard("visa", "4242"),
    "mastercard": TestCard("mastercard", "4444"),
    "chargeDeclined": TestCard(
        "visa", "0002", decline_code="generic_decline", decline_message="Your card was declined."
    ),
    "chargeDeclinedInsufficientFunds": TestCard(
        "visa", "9995", decline_code="insufficient_funds", decline_message="Your card has insufficient funds."
    ),
    "riskLevelElevated": TestCard("visa", "9235", risk_level="elevated"),
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    params: Params

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


@dataclass
class _Response:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Stored:
    method: str
    path: str
    params: Params
    response: _Response


class StripeApiError(Exception):
    """An error answer in Stripe's shape; `stored` says whether idempotency remembers it."""

    stored = True

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        error: dict[str, Any] = {"type": type, "message": message}
        if code:
            error["code"] = code
        if decline_code:
            error["decline_code"] = decline_code
        if param:
            error["param"] = param
        error.update(extra)
        self.response = _Response(status, {"error": error})


class InvalidParam(StripeApiError):
    # Stripe saves no idempotent result for requests that fail validation.
    stored = False

    def __init__(self, message: str, *, param: str, code: str = "parameter_invalid") -> None:
        super().__init__(400, "invalid_request_error", message, code=code, param=param)


def decode_form(encoded: str) -> Params:
    """`a[b][0]=x&a[c]=y` → {"a": {"b": ["x"], "c": "y"}}, the way Stripe reads form bodies."""
    root: Params = {}
    for name, value in parse_qsl(encoded, keep_blank_values=True):
        head, _, rest = name.partition("[")
        parts = [head, *re.findall(r"([^\[\]]*)\]", "[" + rest)] if rest else [head]
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        last = parts[-1] or str(len(node))  # `expand[]=x` appends
        node[last] = value
    return _lists_from_indexed_dicts(root)


def _lists_from_indexed_dicts(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    converted = {key: _lists_from_indexed_dicts(item) for key, item in value.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _int_param(params: Params, name: str, *, required: bool) -> int | None:
    raw = params.get(name)
    if raw is None:
        if required:
            raise InvalidParam(f"Missing required param: {name}.", param=name, code="parameter_missing")
        return None
    if not isinstance(raw, str) or not raw.isdigit() or int(raw) < 1:
        raise InvalidParam(f"Invalid positive integer: {raw}", param=name, code="parameter_invalid_integer")
    return int(raw)


def _str_param(params: Params, name: str, *, default: str | None = None) -> str | None:
    raw = params.get(name, default)
    if raw is not None and not isinstance(raw, str):
        raise InvalidParam(f"Invalid string: {name}", param=name)
    return raw


def _expand(params: Params) -> list[str]:
    raw = params.get("expand", [])
    return [raw] if isinstance(raw, str) else list(raw)


_CLAUSE = re.compile(
    r"""\s*(?:metadata\[(?P<kq>['"])(?P<key>(?:\\.|(?!(?P=kq)).)*)(?P=kq)\]|(?P<field>[a-z_]+))"""
    r"""\s*:\s*(?P<vq>['"])(?P<value>(?:\\.|(?!(?P=vq)).)*)(?P=vq)\s*"""
)
_CONJUNCTION = re.compile(r"AND(?=\s)", re.IGNORECASE)
_SEARCHABLE_FIELDS = frozenset({"status", "currency"})


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_search_query(query: str) -> list[Callable[[dict[str, Any]], bool]]:
    """Stripe's search language, the subset Paydesk uses: `metadata['k']:'v'` and `status:'x'`
    clauses joined by AND (exact matches)."""
    matchers: list[Callable[[dict[str, Any]], bool]] = []
    position = 0
    while True:
        clause = _CLAUSE.match(query, position)
        if clause is None:
            raise InvalidParam(f"Invalid query: {query}", param="query")
        value = _unescape(clause["value"])
        if clause["key"] is not None:
            key = _unescape(clause["key"])
            matchers.append(lambda obj, key=key, value=value: obj["metadata"].get(key) == value)
        elif clause["field"] in _SEARCHABLE_FIELDS:
            name = clause["field"]
            matchers.append(lambda obj, name=name, value=value: str(obj.get(name)) == value)
        else:
            raise InvalidParam(f"Field '{clause['field']}' is not searchable here.", param="query")
        position = clause.end()
        if position == len(query):
            return matchers
        conjunction = _CONJUNCTION.match(query, position)
        if conjunction is None:
            raise InvalidParam(f"Invalid query: {query}", param="query")
        position = conjunction.end()


class _Handler(BaseHTTPRequestHandler):
    server: QuietServer

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        headers = {name.lower(): value for name, value in self.headers.items()}
        response = self.server.fake.handle(method=method, target=self.path, headers=headers, body=body)
        payload = json.dumps(response.body).encode()
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Request-Id", _new_id("req"))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a scripted hang): exactly what the test wanted

    def log_message(self, format: str, *args: Any) -> None:
        return  # keep test output quiet; `FakeStripe.requests` is the log


_Route = tuple[str, re.Pattern[str], str]
_ROUTES: list[_Route] = [
    ("POST", re.compile(r"/v1/payment_intents"), "_create_intent"),
    ("GET", re.compile(r"/v1/payment_intents/search"), "_search_intents"),
    ("GET", re.compile(r"/v1/payment_intents/(?P<intent>[^/]+)"), "_retrieve_intent"),
    ("POST", re.compile(r"/v1/payment_intents/(?P<intent>[^/]+)/capture"), "_capture_intent"),
    ("POST", re.compile(r"/v1/payment_intents/(?P<intent>[^/]+)/cancel"), "_cancel_intent"),
    ("POST", re.compile(r"/v1/refunds"), "_create_refund"),
    ("GET", re.compile(r"/v1/tokens/(?P<token>btok_[^/]+)"), "_retrieve_bank_token"),
    ("GET", re.compile(r"/v1/tokens/(?P<token>[^/]+)"), "_retrieve_token"),
    ("POST", re.compile(r"/v1/payouts"), "_create_payout"),
    ("GET", re.compile(r"/v1/payouts"), "_list_payouts"),
    ("GET", re.compile(r"/v1/payouts/(?P<payout>[^/]+)"), "_retrieve_payout"),
    ("GET", re.compile(r"/v1/payment_methods/(?P<payment_method>[^/]+)"), "_retrieve_payment_method"),
]
_CANCELABLE = frozenset(
    {"requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing"}
)


class FakeStripe(FakeStripePayouts, ThreadedFake):
    """Start with `with FakeStripe() as stripe_server:`; point the SDK at `stripe_server.url`."""

    handler = _Handler

    def __init__(self, *, api_key: str = DEFAULT_API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self._requests: list[RecordedRequest] = []
        self._intents: dict[str, dict[str, Any]] = {}
        self._charges: dict[str, dict[str, Any]] = {}
        self._refunds: dict[str, dict[str, Any]] = {}
        self._idempotent: dict[str, _Stored] = {}
        # Minted ids (tok_1…, pm_1…) -> test card name; the test names themselves need no minting.
        self._minted: dict[str, str] = {}
        self._payouts: dict[str, dict[str, Any]] = {}
        self._bank_accounts: dict[str, str] = {}

    @property
    def url(self) -> str:
        return self.origin

    # --- inspection -----------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def charges_made(self) -> int:
        with self._lock:
            return len(self._intents)

    @property
    def refunds(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._refunds.values()))

    def create_token(self, card: str = "visa") -> str:
        return self._mint("tok", card)

    def create_payment_method(self, card: str = "visa") -> str:
        return self._mint("pm", card)

    def _mint(self, prefix: str, card: str) -> str:
        assert card in TEST_CARDS, card
        minted = f"{prefix}_1{secrets.token_hex(12)}"
        with self._lock:
            self._minted[minted] = card
        return minted

    def payment_intent(self, intent_id: str) -> dict[str, Any]:
        with self._lock:
            return self._render_intent(self._intents[intent_id], expand=["latest_charge"])

    # --- request handling -----------------------------------------------------------------------
    def handle(self, *, method: str, target: str, headers: dict[str, str], body: str) -> _Response:
        split = urlsplit(target)
        params = decode_form(split.query if method == "GET" else body)
        with self._lock:
            self._requests.append(RecordedRequest(method, split.path, headers, params))
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return self._unauthorized(headers.get("authorization", ""))
        with self._lock:
            script = self._next_script()
        if script.failure is not None:
            response = self._scripted_failure(script.failure)
        else:
            response = self._execute(method, split.path, params, headers.get("idempotency-key"))
            if script.lose_answer:
                response = self._scripted_failure(500)
        self._wait(script.hang)
        return response

    def _unauthorized(self, authorization: str) -> _Response:
        if not authorization.startswith("Bearer ") or authorization == "Bearer ":
            message = "You did not provide an API key."
        else:
            # Stripe echoes only a masked key; the fake does the same.
            message = f"Invalid API Key provided: {authorization[7:15]}****{authorization[-4:]}"
        return StripeApiError(401, "invalid_request_error", message).response

    def _scripted_failure(self, status: int) -> _Response:
        if status == 429:
            return StripeApiError(
                429, "invalid_request_error", "Too many requests hit the API too quickly.", code="rate_limit"
            ).response
        return StripeApiError(status, "api_error", "An unknown error occurred.").response

    def _execute(self, method: str, path: str, params: Params, idempotency_key: str | None) -> _Response:
        route = next(
            (
                (name, match)
                for verb, pattern, name in _ROUTES
                if verb == method and (match := pattern.fullmatch(path))
            ),
            None,
        )
        if route is None:
            return StripeApiError(
                404, "invalid_request_error", f"Unrecognized request URL ({method}: {path})."
            ).response
        handler_name, match = route
        handler = getattr(self, handler_name)
        idempotent = method == "POST" and bool(idempotency_key)
        with self._lock:
            if idempotent:
                stored = self._idempotent.get(idempotency_key)
                if stored is not None:
                    return self._replay(stored, method=method, path=path, params=params, key=idempotency_key)
            try:
                response = _Response(200, handler(params, **match.groupdict()))
                remember = True
            except StripeApiError as error:
                response, remember = error.response, error.stored
            if idempotent:
                response.headers["Idempotency-Key"] = idempotency_key
                if remember:
                    self._idempotent[idempotency_key] = _Stored(method, path, params, response)
            return response

    def _replay(self, stored: _Stored, *, method: str, path: str, params: Params, key: str) -> _Response:
        if (stored.method, stored.path) != (method, path):
            return StripeApiError(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used for the same endpoint they were first "
                f"used for ('{stored.method} {stored.path}' vs '{method} {path}').",
            ).response
        if stored.params != params:
            return StripeApiError(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters they were "
                f"first used with. Try using a key other than '{key}' if you meant to execute a "
                "different request.",
            ).response
        return _Response(
            stored.response.status,
            copy.deepcopy(stored.response.body),
            {**stored.response.headers, "Idempotent-Replayed": "true"},
        )

    # --- rendering ------------------------------------------------------------------------------
    def _render_intent(self, intent: dict[str, Any], *, expand: list[str]) -> dict[str, Any]:
        rendered = copy.deepcopy(intent)
        if "latest_charge" in expand and intent["latest_charge"]:
            rendered["latest_charge"] = copy.deepcopy(self._charges[intent["latest_charge"]])
        return rendered

    def _intent(self, intent_id: str) -> dict[str, Any]:
        try:
            return self._intents[intent_id]
        except KeyError:
            raise StripeApiError(
                404,
                "invalid_request_error",
                f"No such payment_intent: '{intent_id}'",
                code="resource_missing",
                param="intent",
            )

    # --- endpoints (called with the lock held) --------------------------------------------------
    def _resolve_card(self, params: Params) -> tuple[TestCard | None, str | None]:
        payment_method = _str_param(params, "payment_method")
        data = params.get("payment_method_data")
        if payment_method is not None:
            name = self._card_name(payment_method, test_prefix="pm_card_")
            if name is None:
                raise InvalidParam(
                    f"No such PaymentMethod: '{payment_method}'",
                    param="payment_method",
                    code="resource_missing",
                )
            return TEST_CARDS[name], payment_method
        if data is not None:
            if not isinstance(data, dict) or data.get("type") != "card":
                raise InvalidParam(
                    "payment_method_data[type] must be card.", param="payment_method_data[type]"
                )
            token = (data.get("card") or {}).get("token") if isinstance(data.get("card"), dict) else None
            name = self._card_name(token, test_prefix="tok_") if isinstance(token, str) else None
            if name is None:
                raise InvalidParam(
                    f"No such token: '{token}'",
                    param="payment_method_data[card][token]",
                    code="resource_missing",
                )
            return TEST_CARDS[name], _new_id("pm")
        return None, None

    def _card_name(self, value: str, *, test_prefix: str) -> str | None:
        """The test card a token or PaymentMethod id stands for; None: Stripe knows no such id."""
        if value in self._minted:
            return self._minted[value]
        name = value.removeprefix(test_prefix)
        return name if value.startswith(test_prefix) and name in TEST_CARDS else None

    def _retrieve_token(self, params: Params, token: str) -> dict[str, Any]:
        name = self._card_name(token, test_prefix="tok_")
        if name is None:
            raise StripeApiError(
                404,
                "invalid_request_error",
                f"No such token: '{token}'",
                code="resource_missing",
                param="token",
            )
        card = TEST_CARDS[name]
        return {
            "id": token,
            "object": "token",
            "type": "card",
            "used": False,
            "livemode": False,
            "card": {"object": "card", "brand": card.brand.title(), "last4": card.last4},
        }

    def _retrieve_payment_method(self, params: Params, payment_method: str) -> dict[str, Any]:
        name = self._card_name(payment_method, test_prefix="pm_card_")
        if name is None:
            raise StripeApiError(
                404,
                "invalid_request_error",
                f"No such PaymentMethod: '{payment_method}'",
                code="resource_missing",
                param="payment_method",
            )
        card = TEST_CARDS[name]
        return {
            "id": payment_method,
            "object": "payment_method",
            "type": "card",
            "livemode": False,
            "card": {"brand": card.brand, "last4": card.last4},
        }

    def _create_intent(self, params: Params) -> dict[str, Any]:
        amount = _int_param(params, "amount", required=True)
        currency = (_str_param(params, "currency") or "").lower()
        if not re.fullmatch(r"[a-z]{3}", currency):
            raise InvalidParam(f"Invalid currency: {currency}", param="currency", code="parameter_missing")
        capture_method = _str_param(params, "capture_method", default="automatic")
        if capture_method not in {"automatic", "automatic_async", "manual"}:
            raise InvalidParam(f"Invalid capture_method: {capture_method}", param="capture_method")
        metadata = params.get("metadata", {})
        if not isinstance(metadata, dict):
            raise InvalidParam("Invalid object", param="metadata")
        card, payment_method = self._resolve_card(params)
        confirm = params.get("confirm") == "true"
        if confirm and card is None:
            raise InvalidParam(
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                param="payment_method",
                code="payment_intent_unexpected_state",
            )
        intent_id = _new_id("pi")
        intent: dict[str, Any] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": 0,
            "amount_received": 0,
            "currency": currency,
            "capture_method": capture_method,
            "status": "requires_confirmation" if card else "requires_payment_method",
            "payment_method": payment_method,
            "payment_method_types": params.get("payment_method_types", ["card"]),
            "metadata": metadata,
            "description": params.get("description"),
            "latest_charge": None,
            "last_payment_error": None,
            "canceled_at": None,
            "cancellation_reason": None,
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
            "created": int(time.time()),
            "livemode": False,
        }
        self._intents[intent_id] = intent
        if confirm:
            assert card is not None
            self._confirm(intent, card)
        return self._render_intent(intent, expand=_expand(params))

    def _confirm(self, intent: dict[str, Any], card: TestCard) -> None:
        declined = bool(card.decline_code)
        charge = {
            "id": _new_id("ch"),
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": 0,
            "amount_refunded": 0,
            "captured": False,
            "currency": intent["currency"],
            "paid": not declined,
            "refunded": False,
            "status": "failed" if declined else "succeeded",
            "payment_intent": intent["id"],
            "payment_method": intent["payment_method"],
            "failure_code": "card_declined" if declined else None,
            "failure_message": card.decline_message or None,
            "outcome": {
                "network_status": "declined_by_network" if declined else "approved_by_network",
                "reason": card.decline_code or None,
                "risk_level": card.risk_level,
                "risk_score": 65 if card.risk_level == "elevated" else 20,
                "type": "issuer_declined" if declined else "authorized",
            },
            "payment_method_details": {
                "type": "card",
                "card": {"brand": card.brand, "last4": card.last4, "funding": "credit", "country": "US"},
            },
            "created": int(time.time()),
        }
        self._charges[charge["id"]] = charge
        intent["latest_charge"] = charge["id"]
        if declined:
            error = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": card.decline_code,
                "message": card.decline_message,
                "charge": charge["id"],
            }
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = error
            raise StripeApiError(
                402,
                "card_error",
                card.decline_message,
                code="card_declined",
                decline_code=card.decline_code,
                charge=charge["id"],
                payment_intent=self._render_intent(intent, expand=[]),
            )
        if intent["capture_method"] == "manual":
            intent["status"] = "requires_capture"
            intent["amount_capturable"] = intent["amount"]
        else:
            intent["status"] = "succeeded"
            intent["amount_received"] = intent["amount"]
            charge.update(captured=True, amount_captured=intent["amount"])

    def _retrieve_intent(self, params: Params, intent: str) -> dict[str, Any]:
        return self._render_intent(self._intent(intent), expand=_expand(params))

    def _search_intents(self, params: Params) -> dict[str, Any]:
        query = _str_param(params, "query")
        if not query:
            raise InvalidParam("Missing required param: query.", param="query", code="parameter_missing")
        matchers = parse_search_query(query)
        limit = _int_param(params, "limit", required=False) or 10
        found = [i for i in reversed(self._intents.values()) if all(m(i) for m in matchers)]
        expand = [name.removeprefix("data.") for name in _expand(params) if name.startswith("data.")]
        return {
            "object": "search_result",
            "url": "/v1/payment_intents/search",
            "has_more": len(found) > limit,
            "next_page": None,
            "data": [self._render_intent(intent, expand=expand) for intent in found[:limit]],
        }

    def _capture_intent(self, params: Params, intent: str) -> dict[str, Any]:
        payment_intent = self._intent(intent)
        if payment_intent["status"] != "requires_capture":
            raise StripeApiError(
                400,
                "invalid_request_error",
                "This PaymentIntent could not be captured because it has a status of "
                f"{payment_intent['status']}. Only a PaymentIntent with one of the following statuses "
                "may be captured: requires_capture.",
                code="payment_intent_unexpected_state",
            )
        amount = (
            _int_param(params, "amount_to_capture", required=False) or payment_intent["amount_capturable"]
        )
        if amount > payment_intent["amount_capturable"]:
            raise StripeApiError(
                400,
                "invalid_request_error",
                f"The amount to capture ({amount}) is greater than the amount capturable "
                f"({payment_intent['amount_capturable']}).",
                code="amount_too_large",
                param="amount_to_capture",
            )
        payment_intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
        self._charges[payment_intent["latest_charge"]].update(captured=True, amount_captured=amount)
        return self._render_intent(payment_intent, expand=_expand(params))

    def _cancel_intent(self, params: Params, intent: str) -> dict[str, Any]:
        payment_intent = self._intent(intent)
        if payment_intent["status"] not in _CANCELABLE:
            raise StripeApiError(
                400,
                "invalid_request_error",
                "You cannot cancel this PaymentIntent because it has a status of "
                f"{payment_intent['status']}.",
                code="payment_intent_unexpected_state",
            )
        payment_intent.update(
            status="canceled",
            amount_capturable=0,
            canceled_at=int(time.time()),
            cancellation_reason=_str_param(params, "cancellation_reason"),
        )
        return self._render_intent(payment_intent, expand=_expand(params))

    def _create_refund(self, params: Params) -> dict[str, Any]:
        intent_id = _str_param(params, "payment_intent")
        if not intent_id:
            raise InvalidParam(
                "Missing required param: payment_intent.", param="payment_intent", code="parameter_missing"
            )
        payment_intent = self._intent(intent_id)
        charge = self._charges.get(payment_intent["latest_charge"] or "")
        if payment_intent["status"] != "succeeded" or charge is None:
            raise StripeApiError(
                400,
                "invalid_request_error",
                f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                code="charge_not_refundable",
            )
        refundable = charge["amount_captured"] - charge["amount_refunded"]
        if refundable == 0:
            raise StripeApiError(
                400,
                "invalid_request_error",
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
            )
        amount = _int_param(params, "amount", required=False) or refundable
        if amount > refundable:
            raise StripeApiError(
                400,
                "invalid_request_error",
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({refundable}).",
                code="amount_too_large",
                param="amount",
            )
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
        refund = {
            "id": _new_id("re"),
            "object": "refund",
            "amount": amount,
            "currency": payment_intent["currency"],
            "charge": charge["id"],
            "payment_intent": intent_id,
            "reason": _str_param(params, "reason"),
            "metadata": params.get("metadata", {}),
            "status": "succeeded",
            "created": int(time.time()),
        }
        self._refunds[refund["id"]] = refund
        return copy.deepcopy(refund)
