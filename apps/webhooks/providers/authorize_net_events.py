"""Authorize.Net: `X-ANET-Signature` (HMAC-SHA512 of the raw body) and the events Paydesk acts on.

The signature is `sha512=` and the upper-case hex HMAC-SHA512 of the body, keyed with the
merchant's Signature Key as text (the way Authorize.Net's own samples compute it). An event names
its transaction by `payload.id` (the transId), which a payment holds as its `gateway_reference`;
amounts are decimals in the major unit. A refund is a transaction of its own: its notification
names the refund's transId, so it only finds its payment when the payload also carries the
original's `refTransId` (otherwise it waits, then goes dead for an operator to match by hand).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any

from django.conf import settings
from django.utils.dateparse import parse_datetime

from apps.payments.provider_events import ProviderChange
from apps.webhooks.errors import WebhookNotConfigured, WebhookSignatureInvalid, WebhookSignatureMissing
from apps.webhooks.providers import envelope as shared

SIGNATURE_HEADER = "X-ANET-Signature"
_SIGNATURE = re.compile(r"^sha512=([0-9a-f]{128})$", re.IGNORECASE)
_PREFIX = "net.authorize.payment."
STATUS_TYPES = frozenset(
    f"{_PREFIX}{name}"
    for name in ("authcapture.created", "capture.created", "priorAuthCapture.created", "fraud.declined")
)
# responseCode of a transaction: 1 approved, 2 declined, 3 error, 4 held for review.
_APPROVED, _DECLINED, _ERROR = 1, 2, 3


def signature_keys() -> list[str]:
    """AUTHORIZENET_SIGNATURE_KEY (comma-separated: the old and the new one while it is rotated)."""
    return [key.strip() for key in settings.AUTHORIZENET_SIGNATURE_KEY.split(",") if key.strip()]


def verify(body: bytes, headers: Mapping[str, str]) -> None:
    header = (headers.get(SIGNATURE_HEADER) or "").strip()
    if not header:
        raise WebhookSignatureMissing(f"The {SIGNATURE_HEADER} header is missing.")
    keys = signature_keys()
    if not keys:
        raise WebhookNotConfigured(
            "Authorize.Net webhooks can't be verified: AUTHORIZENET_SIGNATURE_KEY is not set."
        )
    match = _SIGNATURE.match(header)
    if match is None:
        raise WebhookSignatureInvalid(f"{SIGNATURE_HEADER} must be sha512= and 128 hex digits.")
    given = match.group(1).lower()
    # Every key is tried (no early exit) so the time taken says nothing about which one matched.
    valid = [
        hmac.compare_digest(hmac.new(key.encode(), body, hashlib.sha512).hexdigest(), given) for key in keys
    ]
    if not any(valid):
        raise WebhookSignatureInvalid(f"The {SIGNATURE_HEADER} does not match the body.")


def envelope(payload: dict[str, Any]) -> shared.Envelope:
    raw_date = payload.get("eventDate")
    created = parse_datetime(raw_date) if isinstance(raw_date, str) else None
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return shared.Envelope(
        event_id=shared.required_text(payload, "notificationId", max_length=255),
        type=shared.required_text(payload, "eventType", max_length=100),
        created_at=created,
        payload=payload,
    )


def changes(event_type: str, payload: dict[str, Any]) -> list[ProviderChange]:
    transaction = payload.get("payload")
    handler = _HANDLERS.get(event_type.removeprefix(_PREFIX)) if event_type.startswith(_PREFIX) else None
    if handler is None or not isinstance(transaction, dict) or transaction.get("entityName") != "transaction":
        return []
    trans_id = _trans_id(transaction.get("id"))
    return handler(trans_id, transaction) if trans_id else []


def _trans_id(value: Any) -> str:
    # transIds are numbers written as strings, but a number is accepted as the same id.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


def _captured(trans_id: str, transaction: dict[str, Any]) -> list[ProviderChange]:
    code = transaction.get("responseCode")
    if code == _APPROVED:
        return [
            ProviderChange(
                kind="succeeded",
                references=(trans_id,),
                major_amount=shared.decimal_amount(transaction.get("authAmount")),
            )
        ]
    if code in (_DECLINED, _ERROR):
        return [
            ProviderChange(
                kind="failed",
                references=(trans_id,),
                failure_code="card_declined" if code == _DECLINED else "processing_error",
                failure_message="The transaction was declined."
                if code == _DECLINED
                else "The transaction failed.",
            )
        ]
    return []  # held for review at Authorize.Net: its fraud.approved / fraud.declined follows


def _fraud_declined(trans_id: str, transaction: dict[str, Any]) -> list[ProviderChange]:
    return [
        ProviderChange(
            kind="failed",
            references=(trans_id,),
            failure_code="fraud_declined",
            failure_message="The transaction was declined by the fraud filters.",
        )
    ]


def _refunded(trans_id: str, transaction: dict[str, Any]) -> list[ProviderChange]:
    if transaction.get("responseCode") != _APPROVED:
        return []
    return [
        ProviderChange(
            kind="refunded",
            references=(_trans_id(transaction.get("refTransId")), trans_id),
            major_amount=shared.decimal_amount(transaction.get("authAmount")),
            refund_reference=trans_id,
        )
    ]


_HANDLERS: dict[str, Callable[[str, dict[str, Any]], list[ProviderChange]]] = {
    "authcapture.created": _captured,
    "capture.created": _captured,
    "priorAuthCapture.created": _captured,
    "fraud.declined": _fraud_declined,
    "refund.created": _refunded,
}
