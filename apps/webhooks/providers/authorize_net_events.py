"""Authorize.Net: `X-ANET-Signature` (HMAC-SHA512 of the raw body) and the events Paydesk acts on.

The signature is `sha512=` and the upper-case hex HMAC-SHA512 of the body, keyed with the
merchant's Signature Key as text (the way Authorize.Net's own samples compute it). An event names
its transaction by `payload.id` (the transId), which a payment holds as its `gateway_reference`;
amounts are decimals in the major unit. Its `invoiceNumber` is the reference Paydesk sent the
transaction under (apps.gateways.authorizenet): it names the payment of a charge whose answer was
lost (no transId recorded yet), and the original charge of a refund, which is a transaction of its
own (or the payload's `refTransId`, when it carries one).

What each event means for the payment:
- authcapture / capture / priorAuthCapture created: approved → succeeded (a late success),
  declined or errored → failed; held (responseCode 4) → see fraud.held;
- fraud.held → held for review; fraud.approved → approved at Authorize.Net (a purchase is then
  captured); fraud.declined → declined there (canceled, or failed if its answer was never
  recorded) — apps.payments.provider_events.holds;
- void.created → voided (canceled; a captured, unsettled charge's void is a refund of it);
- refund.created → a refund made at Authorize.Net (ours are recognised by their transId).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from django.conf import settings
from django.utils.dateparse import parse_datetime

from apps.gateways.selectors import authorizenet_sent_under
from apps.payments.provider_events import ChangeKind, ProviderChange
from apps.webhooks.errors import WebhookNotConfigured, WebhookSignatureInvalid, WebhookSignatureMissing
from apps.webhooks.providers import envelope as shared

SIGNATURE_HEADER = "X-ANET-Signature"
_SIGNATURE = re.compile(r"^sha512=([0-9a-f]{128})$", re.IGNORECASE)
_PREFIX = "net.authorize.payment."
STATUS_TYPES = frozenset(
    f"{_PREFIX}{name}"
    for name in (
        "authcapture.created",
        "capture.created",
        "priorAuthCapture.created",
        "fraud.held",
        "fraud.approved",
        "fraud.declined",
        "void.created",
    )
)
# responseCode of a transaction: 1 approved, 2 declined, 3 error, 4 held for review.
_APPROVED, _DECLINED, _ERROR, _HELD = 1, 2, 3, 4


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
    return handler(_Sent.of(trans_id, transaction), transaction) if trans_id else []


def _trans_id(value: Any) -> str:
    # transIds are numbers written as strings, but a number is accepted as the same id.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) else ""


@dataclass(frozen=True)
class _Sent:
    """The transaction an event names, and what Paydesk sent it as (found by its invoice number)."""

    trans_id: str
    key: str = ""  # our idempotency key: a payment's (or deposit's) id, or a refund's
    original: str = ""  # the charge a refund was for

    @classmethod
    def of(cls, trans_id: str, transaction: dict[str, Any]) -> _Sent:
        invoice = transaction.get("invoiceNumber")
        sent = authorizenet_sent_under(reference=invoice) if isinstance(invoice, str) else None
        original = _trans_id(transaction.get("refTransId")) or (sent[1] if sent else "")
        return cls(trans_id, key=sent[0] if sent else "", original=original)

    def change(self, kind: ChangeKind, **fields: Any) -> ProviderChange:
        return ProviderChange(kind=kind, references=(self.trans_id,), payment_hint=self.key, **fields)


def _amount(transaction: dict[str, Any]) -> Any:
    return shared.decimal_amount(transaction.get("authAmount"))


def _captured(sent: _Sent, transaction: dict[str, Any]) -> list[ProviderChange]:
    code = transaction.get("responseCode")
    if code == _APPROVED:
        return [sent.change("succeeded", major_amount=_amount(transaction))]
    if code in (_DECLINED, _ERROR):
        declined = code == _DECLINED
        return [
            sent.change(
                "failed",
                failure_code="card_declined" if declined else "processing_error",
                failure_message="The transaction was declined." if declined else "The transaction failed.",
            )
        ]
    if code == _HELD:
        return _held(sent, transaction)
    return []


def _held(sent: _Sent, transaction: dict[str, Any]) -> list[ProviderChange]:
    return [sent.change("held")]


def _approved(sent: _Sent, transaction: dict[str, Any]) -> list[ProviderChange]:
    return [sent.change("review_approved", major_amount=_amount(transaction))]


def _fraud_declined(sent: _Sent, transaction: dict[str, Any]) -> list[ProviderChange]:
    return [
        sent.change(
            "review_declined",
            failure_code="fraud_declined",
            failure_message="The transaction was declined by the fraud filters.",
        )
    ]


def _voided(sent: _Sent, transaction: dict[str, Any]) -> list[ProviderChange]:
    return [sent.change("voided", refund_reference=sent.trans_id)]


def _refunded(sent: _Sent, transaction: dict[str, Any]) -> list[ProviderChange]:
    if transaction.get("responseCode") != _APPROVED:
        return []
    # The refund is a transaction of its own: its payment is the original charge's.
    return [
        ProviderChange(
            kind="refunded",
            references=(sent.original, sent.trans_id),
            major_amount=_amount(transaction),
            refund_reference=sent.trans_id,
        )
    ]


_HANDLERS: dict[str, Callable[[_Sent, dict[str, Any]], list[ProviderChange]]] = {
    "authcapture.created": _captured,
    "capture.created": _captured,
    "priorAuthCapture.created": _captured,
    "fraud.held": _held,
    "fraud.approved": _approved,
    "fraud.declined": _fraud_declined,
    "void.created": _voided,
    "refund.created": _refunded,
}


def payout_news(event_type: str, payload: dict[str, Any]) -> shared.PayoutNews | None:
    """Authorize.Net sends no payouts: none of its events is about one."""
    return None
