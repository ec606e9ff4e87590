"""Stripe: `Stripe-Signature` verified by the official SDK, and the events Paydesk acts on.

A payment's `gateway_reference` is its PaymentIntent id; charges, refunds and disputes name their
PaymentIntent in `payment_intent`. A PaymentIntent also carries the payment id in its metadata
(written at authorization), which finds a payment whose authorization answer never arrived.
A Payout (`payout.paid`, `payout.failed`, `payout.canceled`) carries our payout id in its metadata
the same way: `payout_news` says what became of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import stripe
from django.conf import settings

from apps.gateways.stripe_gateway import METADATA_KEY, failure_code
from apps.gateways.stripe_payouts import payout_result
from apps.payments.provider_events import ChangeKind, ProviderChange
from apps.webhooks.errors import (
    WebhookNotConfigured,
    WebhookSignatureExpired,
    WebhookSignatureInvalid,
    WebhookSignatureMissing,
)
from apps.webhooks.providers import envelope as shared

SIGNATURE_HEADER = "Stripe-Signature"
STATUS_TYPES = frozenset(
    {
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "charge.succeeded",
        "charge.captured",
        "charge.failed",
    }
)


# Payout events settle a Paydesk payout (apps.webhooks.payout_events), not a payment.
PAYOUT_TYPES = frozenset({"payout.paid", "payout.failed", "payout.canceled"})


def signing_secrets() -> list[str]:
    """STRIPE_WEBHOOK_SECRETS, else STRIPE_WEBHOOK_SECRET (comma-separated): several during a rotation."""
    configured = settings.STRIPE_WEBHOOK_SECRETS or settings.STRIPE_WEBHOOK_SECRET.split(",")
    return [secret.strip() for secret in configured if secret.strip()]


def _signed_with(body: bytes, header: str, secret: str, tolerance: int | None) -> bool:
    try:
        return stripe.WebhookSignature.verify_header(body, header, secret, tolerance)
    except stripe.SignatureVerificationError:
        return False


def verify(body: bytes, headers: Mapping[str, str]) -> None:
    """Accepts the body when one of its `v1` signatures was made with one of our secrets, recently.

    The signature is checked first without the time limit, so a stale delivery is told apart from
    a forged one; the SDK compares in constant time and reads every `v1` in the header (Stripe
    signs with both the old and the new secret while one is rolled).
    """
    header = headers.get(SIGNATURE_HEADER) or ""
    if not header.strip():
        raise WebhookSignatureMissing(f"The {SIGNATURE_HEADER} header is missing.")
    secrets = signing_secrets()
    if not secrets:
        raise WebhookNotConfigured("Stripe webhooks can't be verified: STRIPE_WEBHOOK_SECRET is not set.")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookSignatureInvalid(
            "The webhook's body is not UTF-8, so it can't carry a Stripe signature."
        )
    secret = next((secret for secret in secrets if _signed_with(body, header, secret, None)), None)
    if secret is None:
        raise WebhookSignatureInvalid(f"No signature in {SIGNATURE_HEADER} matches the body.")
    # The SDK refuses only an old timestamp; one far ahead (a clock skewed on purpose, a delivery
    # signed to be replayed later) is refused the same way: the window is +/- the tolerance.
    tolerance = settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS
    signed_at = _signed_timestamp(header)
    if signed_at is None or abs(time.time() - signed_at) > tolerance:
        raise WebhookSignatureExpired(
            f"The signature's timestamp is more than {tolerance} s away from the server's clock."
        )


def _signed_timestamp(header: str) -> int | None:
    """The header's first `t=`, read as the SDK reads it to verify the signature."""
    for item in header.split(","):
        parts = item.split("=", 2)
        if parts[0] == "t" and len(parts) > 1:
            try:
                return int(parts[1])
            except ValueError:
                return None
    return None


def envelope(payload: dict[str, Any]) -> shared.Envelope:
    created = payload.get("created")
    return shared.Envelope(
        event_id=shared.required_text(payload, "id", max_length=255),
        type=shared.required_text(payload, "type", max_length=100),
        created_at=datetime.fromtimestamp(created, tz=UTC)
        if isinstance(created, int) and created > 0
        else None,
        payload=payload,
    )


def changes(event_type: str, payload: dict[str, Any]) -> list[ProviderChange]:
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    handler = _HANDLERS.get(event_type)
    if handler is None or not isinstance(obj, dict):
        return []
    return handler(obj)


def payout_news(event_type: str, payload: dict[str, Any]) -> shared.PayoutNews | None:
    """A payout event's news (None: not a payout event). The Payout object's own status says what
    happened (`payout_result`, the mapping the gateway's answers use), its metadata which payout
    of ours it is."""
    if event_type not in PAYOUT_TYPES:
        return None
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict) or obj.get("object") != "payout":
        return shared.PayoutNews(result=payout_result({}), payout_hint="")
    return shared.PayoutNews(result=payout_result(obj), payout_hint=_hint(obj))


def _text(obj: dict[str, Any], name: str) -> str:
    value = obj.get(name)
    if isinstance(value, dict):  # an expanded object: its id
        value = value.get("id")
    return value if isinstance(value, str) else ""


def _object(obj: dict[str, Any], name: str) -> dict[str, Any]:
    """A nested object of the event ({} when it is missing or is not an object)."""
    value = obj.get(name)
    return value if isinstance(value, dict) else {}


def _amount(obj: dict[str, Any], name: str) -> int | None:
    value = obj.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _hint(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata")
    return _text(metadata, METADATA_KEY) if isinstance(metadata, dict) else ""


def _intent_succeeded(intent: dict[str, Any]) -> list[ProviderChange]:
    return [
        ProviderChange(
            kind="succeeded",
            references=(_text(intent, "id"),),
            payment_hint=_hint(intent),
            amount=_amount(intent, "amount_received"),
            currency=_text(intent, "currency"),
        )
    ]


def _intent_failed(intent: dict[str, Any]) -> list[ProviderChange]:
    error = _object(intent, "last_payment_error")
    return [
        ProviderChange(
            kind="failed",
            references=(_text(intent, "id"),),
            payment_hint=_hint(intent),
            failure_code=failure_code(error) if error else "payment_failed",
            failure_message=_text(error, "message"),
        )
    ]


def _charge_captured(charge: dict[str, Any]) -> list[ProviderChange]:
    if charge.get("captured") is not True:
        return []  # an authorization only: nothing was taken yet
    return [
        ProviderChange(
            kind="succeeded",
            references=(_text(charge, "payment_intent"), _text(charge, "id")),
            amount=_amount(charge, "amount_captured"),
            currency=_text(charge, "currency"),
        )
    ]


def _charge_failed(charge: dict[str, Any]) -> list[ProviderChange]:
    outcome = _object(charge, "outcome")
    error = {"decline_code": _text(outcome, "reason"), "code": _text(charge, "failure_code")}
    return [
        ProviderChange(
            kind="failed",
            references=(_text(charge, "payment_intent"), _text(charge, "id")),
            failure_code=failure_code(error),
            failure_message=_text(charge, "failure_message"),
        )
    ]


_REFUND_APPLIES: dict[str, ChangeKind] = {
    "succeeded": "refunded",
    "pending": "refunded",
    "failed": "refund_failed",
    "canceled": "refund_failed",
}


def _refund(refund: dict[str, Any]) -> list[ProviderChange]:
    # A pending card refund settles on its own (the gateway treats our own the same way); one that
    # still needs action from the customer has moved no money yet.
    kind = _REFUND_APPLIES.get(_text(refund, "status"))
    if kind is None or not _text(refund, "id"):
        return []
    return [
        ProviderChange(
            kind=kind,
            references=(_text(refund, "payment_intent"), _text(refund, "charge")),
            amount=_amount(refund, "amount"),
            currency=_text(refund, "currency"),
            refund_reference=_text(refund, "id"),
        )
    ]


def _charge_refunded(charge: dict[str, Any]) -> list[ProviderChange]:
    """Each refund the charge lists, applied by its id. API versions since 2022-11-15 no longer
    list them unless expanded: then the charge's `amount_refunded` is the total refunded at Stripe,
    and what Paydesk has not recorded of it yet is applied as one refund."""
    listed = _object(charge, "refunds").get("data")
    references = (_text(charge, "payment_intent"), _text(charge, "id"))
    if not isinstance(listed, list):
        total = _amount(charge, "amount_refunded")
        if total is None or total <= 0:
            return []
        return [
            shared.RefundedTotal(
                kind="refunded",
                references=references,
                currency=_text(charge, "currency"),
                refunded_total=total,
            )
        ]
    found: list[ProviderChange] = []
    for refund in listed:
        if isinstance(refund, dict):
            found.extend(
                _refund(
                    {"payment_intent": charge.get("payment_intent"), "charge": charge.get("id"), **refund}
                )
            )
    return found


def _dispute(dispute: dict[str, Any]) -> list[ProviderChange]:
    return [
        ProviderChange(
            kind="dispute_opened",
            references=(_text(dispute, "payment_intent"), _text(dispute, "charge")),
            amount=_amount(dispute, "amount"),
            currency=_text(dispute, "currency"),
            dispute_reference=_text(dispute, "id"),
            dispute_reason=_text(dispute, "reason"),
        )
    ]


_HANDLERS: dict[str, Callable[[dict[str, Any]], list[ProviderChange]]] = {
    "payment_intent.succeeded": _intent_succeeded,
    "payment_intent.payment_failed": _intent_failed,
    "charge.succeeded": _charge_captured,
    "charge.captured": _charge_captured,
    "charge.failed": _charge_failed,
    "charge.refunded": _charge_refunded,
    "refund.created": _refund,
    "refund.updated": _refund,
    "charge.refund.updated": _refund,
    "charge.dispute.created": _dispute,
}
