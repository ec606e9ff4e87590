"""What every provider's webhook shares: the event envelope, and parsing its verified body."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from apps.gateways.base import GatewayResult
from apps.payments.provider_events import ProviderChange, ProviderChangeRejected
from apps.webhooks.errors import WebhookBodyNotJson, WebhookPayloadInvalid


@dataclass(frozen=True)
class Envelope:
    event_id: str
    type: str
    created_at: datetime | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class RefundedTotal(ProviderChange):
    """Not one refund but the provider's running total refunded on a charge (`refunded_total`).

    What it adds is the difference with what Paydesk has recorded as refunded, worked out under
    the payment's row lock when the event is processed: a replay, a second delivery or a later
    event with the same total adds nothing (see `apps.webhooks.services`).
    """

    refunded_total: int = 0


@dataclass(frozen=True)
class PayoutNews:
    """What a provider's event says became of one of its payouts (`result`: paid, failed, in
    transit), and the Paydesk payout it names (`payout_hint`: our id, from the payout's metadata)."""

    result: GatewayResult
    payout_hint: str = ""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_body(body: bytes) -> dict[str, Any]:
    """The verified body as a JSON object (NaN and Infinity refused: the database can't store them)."""
    try:
        payload = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError):
        raise WebhookBodyNotJson("The webhook's body is not valid JSON.")
    if not isinstance(payload, dict):
        raise WebhookBodyNotJson()
    return payload


def required_text(payload: dict[str, Any], name: str, *, max_length: int) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise WebhookPayloadInvalid(
            f"The event must carry `{name}` (a string of at most {max_length}).", param=name
        )
    return value


def decimal_amount(value: Any) -> Decimal | None:
    """A provider's decimal amount, exactly as sent.

    JSON parsing gives a float; its `str()` is the shortest text that reads back as the same float,
    which for amounts (far fewer than 15 significant digits) is the decimal the provider wrote.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ProviderChangeRejected(f"the provider's amount {value!r} is not a number")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ProviderChangeRejected(f"the provider's amount {value!r} is not a number")
    if not amount.is_finite() or amount <= 0:
        raise ProviderChangeRejected(f"the provider's amount {value!r} is not a positive number")
    return amount
