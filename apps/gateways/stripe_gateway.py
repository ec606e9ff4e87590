"""Stripe behind Paydesk's gateway interface: PaymentIntents through the official SDK.

authorize creates and confirms a PaymentIntent in one call (manual capture when capture=False)
and writes our idempotency key into its metadata, so `retrieve` can find it again through the
Search API when an answer was lost. Every call that can move money (create, capture, cancel,
refund) sends our idempotency key as Stripe's `Idempotency-Key`: a retry after a 5xx or a lost
answer replays Stripe's first result instead of charging twice. Stripe scopes keys to the account,
not to the endpoint, so callers need a different key per operation (reusing one is
`gateway_idempotency_conflict`).

How Stripe's answers map onto the interface:
- requires_capture → authorized; succeeded → captured; canceled → voided; a refund → refunded;
- a decline (402) or a refused request (400/404: amount too large, wrong state) → a `failed`
  result carrying Stripe's decline_code (or its code when the decline is generic);
- 5xx, 429, or a connection that failed before the request went out → GatewayRetryableError;
- no answer after the request went out (read timeout, dropped connection) on a call that moves
  money → GatewayResponseLost, to be settled by `retrieve`;
- a missing or rejected API key, or a reused idempotency key → GatewayError: retrying won't help.

`payment_method_check` retrieves the token (`GET /v1/tokens/{id}`) or PaymentMethod
(`GET /v1/payment_methods/{id}`) before anything is written; Stripe's `resource_missing` ("No such
token") raises UnknownPaymentMethod. Stripe's documented test-mode tokens (`tok_visa`,
`pm_card_visa`, ...) are known by definition and not asked about, with a test key only; a `card_`
or `src_` id belongs to a customer and is left to the charge. A token unknown by the time of the
charge still answers a `failed` result with code `resource_missing`.

The SDK's own retries are off (`max_network_retries=0`): retrying is the caller's decision.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

import stripe
from django.conf import settings
from stripe.params import PaymentIntentCreateParams

from apps.core.scrubbing import scrub
from apps.gateways.base import (
    GatewayError,
    GatewayResponseLost,
    GatewayResult,
    GatewayRetryableError,
    UnknownPaymentMethod,
)
from apps.gateways.stripe_payouts import StripePayouts
from apps.gateways.stripe_shared import METADATA_KEY
from apps.gateways.stripe_shared import StripeRefused as _Refused
from apps.gateways.transport import connection_failure

logger = logging.getLogger(__name__)

# Stripe's generic decline tells the customer no more than "card_declined" does.
GENERIC_DECLINE = "generic_decline"
ELEVATED_RISK_LEVELS = frozenset({"elevated", "highest"})
# Stripe's test cards by name (https://docs.stripe.com/testing), usable as `tok_<name>` and
# `pm_card_<name>` in test mode: Stripe knows them without their being created.
STRIPE_TEST_CARD_NAMES = frozenset(
    {
        "visa",
        "visa_debit",
        "visa_cartesBancaires",
        "mastercard",
        "mastercard_debit",
        "mastercard_prepaid",
        "amex",
        "discover",
        "diners",
        "jcb",
        "unionpay",
        "bypassPending",
        "chargeDeclined",
        "chargeDeclinedInsufficientFunds",
        "chargeDeclinedLostCard",
        "chargeDeclinedStolenCard",
        "chargeDeclinedExpiredCard",
        "chargeDeclinedIncorrectCvc",
        "chargeDeclinedProcessingError",
        "chargeDeclinedFraudulent",
        "chargeDeclinedVelocityLimitExceeded",
        "chargeCustomerFail",
        "riskLevelElevated",
        "riskLevelHighest",
        "cvcCheckFail",
        "avsFail",
        "avsLine1Fail",
        "avsZipFail",
        "avsUnchecked",
        "refundFail",
    }
)
STRIPE_TEST_PAYMENT_METHODS = frozenset(
    {f"tok_{name}" for name in STRIPE_TEST_CARD_NAMES}
    | {f"pm_card_{name}" for name in STRIPE_TEST_CARD_NAMES}
)
TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")


class StripeGateway(StripePayouts):
    name = "stripe"

    def __init__(
        self, *, api_key: str | None = None, api_base: str | None = None, timeout: float | None = None
    ) -> None:
        self._api_key = settings.STRIPE_API_KEY if api_key is None else api_key
        self._client = stripe.StripeClient(
            self._api_key,
            base_addresses={"api": api_base or settings.STRIPE_API_BASE},
            http_client=stripe.RequestsClient(
                timeout=settings.STRIPE_TIMEOUT_SECONDS if timeout is None else timeout
            ),
            max_network_retries=0,
        )

    def authorize(
        self, *, amount: int, currency: str, token: str, idempotency_key: str, capture: bool
    ) -> GatewayResult:
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency.lower(),
            "confirm": True,
            "capture_method": "automatic" if capture else "manual",
            "payment_method_types": ["card"],
            # No customer is at hand for 3-D Secure: fail the attempt rather than leave it waiting.
            "error_on_requires_action": True,
            "metadata": {METADATA_KEY: idempotency_key},
            "expand": ["latest_charge"],
        }
        if token.startswith("pm_"):
            params["payment_method"] = token
        else:
            params["payment_method_data"] = {"type": "card", "card": {"token": token}}
        try:
            intent = self._send(
                # The SDK's TypedDict lags the API: it lists neither `payment_method_types` nor
                # a `card` token under `payment_method_data`, both of which the API accepts.
                lambda: self._client.v1.payment_intents.create(
                    params=cast(PaymentIntentCreateParams, params),
                    options={"idempotency_key": idempotency_key},
                ),
                moves_money=True,
            )
        except _Refused as refused:
            return _failed(refused.error, reference="", amount=amount, currency=currency)
        return _intent_result(intent, unsettled=GatewayResponseLost)

    def payment_method_check(self, *, token: str) -> None:
        if token in STRIPE_TEST_PAYMENT_METHODS and self._api_key.startswith(TEST_KEY_PREFIXES):
            return
        retrieve: Callable[[str], stripe.StripeObject]
        if token.startswith("pm_"):
            retrieve = self._client.v1.payment_methods.retrieve
        elif token.startswith("tok_"):
            retrieve = self._client.v1.tokens.retrieve
        else:
            return
        try:
            self._send(lambda: retrieve(token), moves_money=False)
        except _Refused as refused:
            if refused.error.get("code") == "resource_missing":
                raise UnknownPaymentMethod(refused.error.get("message") or "")
            # Any other refusal is the charge's to answer, in its own terms.

    def capture(self, *, reference: str, amount: int, idempotency_key: str) -> GatewayResult:
        try:
            intent = self._send(
                lambda: self._client.v1.payment_intents.capture(
                    reference,
                    params={"amount_to_capture": amount, "expand": ["latest_charge"]},
                    options={"idempotency_key": idempotency_key},
                ),
                moves_money=True,
            )
        except _Refused as refused:
            return _failed(refused.error, reference=reference, amount=amount, currency="")
        return _intent_result(intent, unsettled=GatewayResponseLost)

    def void(self, *, reference: str, idempotency_key: str) -> GatewayResult:
        try:
            intent = self._send(
                lambda: self._client.v1.payment_intents.cancel(
                    reference,
                    params={"expand": ["latest_charge"]},
                    options={"idempotency_key": idempotency_key},
                ),
                moves_money=True,
            )
        except _Refused as refused:
            return _failed(refused.error, reference=reference, amount=0, currency="")
        return _intent_result(intent, unsettled=GatewayResponseLost)

    def refund(self, *, reference: str, amount: int, idempotency_key: str) -> GatewayResult:
        try:
            refund = self._send(
                lambda: self._client.v1.refunds.create(
                    params={"payment_intent": reference, "amount": amount},
                    options={"idempotency_key": idempotency_key},
                ),
                moves_money=True,
            )
        except _Refused as refused:
            return _failed(refused.error, reference="", amount=amount, currency="")
        common: dict[str, Any] = {
            "reference": refund["id"],
            "amount": refund["amount"],
            "currency": refund["currency"].upper(),
            "raw": scrub(refund),
        }
        # A pending card refund is accepted by Stripe and settles on its own; a later failure
        # arrives as a webhook (charge.refund.updated), not as this call's answer.
        if refund["status"] in {"succeeded", "pending"}:
            return GatewayResult(status="refunded", **common)
        return GatewayResult(
            status="failed",
            failure_code=refund.get("failure_reason") or f"refund_{refund['status']}",
            **common,
        )

    def retrieve(self, *, idempotency_key: str) -> GatewayResult | None:
        """The PaymentIntent authorize created with this key, found through its metadata.

        Stripe's Search API is eventually consistent (new objects are usually searchable within
        a minute): a None right after a lost answer is not proof that nothing was charged, so
        reconciliation should only settle "never charged" on payments older than that.
        """
        escaped = idempotency_key.replace("\\", "\\\\").replace("'", "\\'")
        try:
            found = self._send(
                lambda: self._client.v1.payment_intents.search(
                    params={
                        "query": f"metadata['{METADATA_KEY}']:'{escaped}'",
                        "expand": ["data.latest_charge"],
                    }
                ),
                moves_money=False,
            )
        except _Refused as refused:
            raise GatewayError(refused.error.get("message", ""), code="gateway_bad_request")
        if not found["data"]:
            return None
        return _intent_result(found["data"][0], unsettled=GatewayRetryableError)

    def _send(self, call: Callable[[], stripe.StripeObject], *, moves_money: bool) -> dict[str, Any]:
        """Makes one SDK call and turns Stripe's errors into the interface's outcomes."""
        if not self._api_key:
            raise GatewayError(
                "STRIPE_API_KEY is not set: Stripe cannot be called.", code="gateway_not_configured"
            )
        try:
            return call().to_dict()
        except (stripe.CardError, stripe.InvalidRequestError) as exc:
            raise _Refused(_error_body(exc))
        except stripe.RateLimitError:
            raise GatewayRetryableError("Stripe is rate limiting requests.", code="gateway_rate_limited")
        except stripe.APIError as exc:
            raise GatewayRetryableError(
                f"Stripe answered HTTP {exc.http_status}.", code="gateway_unavailable"
            )
        except stripe.APIConnectionError as exc:
            raise connection_failure(exc.__cause__, provider="Stripe", moves_money=moves_money)
        except (stripe.AuthenticationError, stripe.PermissionError) as exc:
            # Stripe's message echoes part of the key: ours names only the problem.
            logger.error("Stripe refused the API key (HTTP %s)", exc.http_status)
            raise GatewayError(
                f"Stripe refused the API key (HTTP {exc.http_status}); check STRIPE_API_KEY.",
                code="gateway_authentication_failed",
            )
        except stripe.IdempotencyError as exc:
            raise GatewayError(str(exc.user_message), code="gateway_idempotency_conflict")
        except stripe.StripeError as exc:
            raise GatewayError(f"Unexpected Stripe error: {type(exc).__name__}", code="gateway_error")


def _error_body(exc: stripe.StripeError) -> dict[str, Any]:
    body = exc.json_body if isinstance(exc.json_body, dict) else {}
    error = body.get("error")
    return error if isinstance(error, dict) else {"message": exc.user_message or ""}


def failure_code(error: dict[str, Any]) -> str:
    decline_code = error.get("decline_code") or ""
    if decline_code and decline_code != GENERIC_DECLINE:
        return decline_code
    return error.get("code") or decline_code or error.get("type") or "gateway_refused"


def _failed(error: dict[str, Any], *, reference: str, amount: int, currency: str) -> GatewayResult:
    intent: dict[str, Any] = error["payment_intent"] if isinstance(error.get("payment_intent"), dict) else {}
    return GatewayResult(
        status="failed",
        reference=intent.get("id") or reference,
        amount=amount,
        currency=(intent.get("currency") or currency).upper(),
        failure_code=failure_code(error),
        failure_message=error.get("message") or "",
        raw=scrub({"error": error}),
    )


def _intent_result(intent: dict[str, Any], *, unsettled: type[GatewayError]) -> GatewayResult:
    """A PaymentIntent's state as a result; `unsettled` is raised for states not yet final."""
    charge: dict[str, Any] = intent["latest_charge"] if isinstance(intent.get("latest_charge"), dict) else {}
    card = (charge.get("payment_method_details") or {}).get("card") or {}
    outcome = charge.get("outcome") or {}
    common: dict[str, Any] = {
        "reference": intent["id"],
        "currency": intent["currency"].upper(),
        "risk_level": "elevated" if outcome.get("risk_level") in ELEVATED_RISK_LEVELS else "normal",
        "card_brand": card.get("brand") or "",
        "card_last4": card.get("last4") or "",
        "raw": scrub(intent),
    }
    status = intent["status"]
    if status == "requires_capture":
        return GatewayResult(status="authorized", amount=intent["amount_capturable"], **common)
    if status == "succeeded":
        return GatewayResult(status="captured", amount=intent["amount_received"], **common)
    if status == "canceled":
        return GatewayResult(status="voided", amount=intent["amount"], **common)
    if status == "requires_payment_method":
        error = intent.get("last_payment_error") or {}
        return GatewayResult(
            status="failed",
            amount=intent["amount"],
            failure_code=failure_code(error) if error else "payment_method_required",
            failure_message=error.get("message") or "",
            **common,
        )
    # processing, requires_action, requires_confirmation: Stripe has not decided yet.
    raise unsettled(f"PaymentIntent {intent['id']} is {status}.", code="gateway_outcome_pending")
