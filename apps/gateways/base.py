"""The one small interface every payment gateway sits behind.

Calls are made outside any database transaction (never hold row locks across the network). Every
call that can move money carries an idempotency key chosen by Paydesk, so a retried call is never
doubled at the gateway. A gateway answers with a `GatewayResult`, or raises:
- `GatewayRetryableError`: a transient failure (5xx, timeout before sending); safe to retry with
  the same idempotency key;
- `GatewayResponseLost`: the request may have reached the gateway but no answer came back; the
  outcome is unknown and must be settled by `retrieve` (reconciliation), never by guessing.
A decline is not an exception: it is a result with `status="failed"` and a `failure_code`.

Before anything is written for a new charge, `payment_method_check` asks whether the gateway knows
the token at all: an unknown one (`UnknownPaymentMethod`, Stripe's `resource_missing`) is refused
as a bad request, as Stripe refuses it, instead of becoming a declined charge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

ResultStatus = Literal["authorized", "captured", "failed", "voided", "refunded"]
RiskLevel = Literal["normal", "elevated"]


@dataclass(frozen=True)
class GatewayResult:
    status: ResultStatus
    reference: str = ""  # the gateway's id for the charge (e.g. a Stripe PaymentIntent id)
    amount: int = 0
    currency: str = ""
    failure_code: str = ""
    failure_message: str = ""
    risk_level: RiskLevel = "normal"
    card_brand: str = ""
    card_last4: str = ""
    raw: dict = field(default_factory=dict)  # the gateway's answer, scrubbed, for the raw log

    @property
    def succeeded(self) -> bool:
        return self.status != "failed"


class GatewayError(Exception):
    def __init__(self, message: str = "", *, code: str = "gateway_error") -> None:
        super().__init__(message or code)
        self.code = code


class UnknownPaymentMethod(GatewayError):
    """The gateway knows no such token or payment method: nothing can be charged to it."""

    def __init__(self, message: str = "", *, code: str = "resource_missing") -> None:
        super().__init__(message or "No such payment method.", code=code)


class GatewayRetryableError(GatewayError):
    """Transient: retry later with the same idempotency key."""


class GatewayResponseLost(GatewayError):
    """The outcome is unknown: settle it with `retrieve`, never by retrying blindly."""


class PaymentGateway(Protocol):
    name: str

    def authorize(
        self, *, amount: int, currency: str, token: str, idempotency_key: str, capture: bool
    ) -> GatewayResult:
        """Charges (capture=True) or only authorizes (capture=False) `amount` on the token."""
        ...

    def payment_method_check(self, *, token: str) -> None:
        """Raises UnknownPaymentMethod for a token the gateway does not know; returns when it knows
        it or cannot tell (the charge then decides). Moves no money; other GatewayErrors on outages."""
        ...

    def capture(self, *, reference: str, amount: int, idempotency_key: str) -> GatewayResult: ...

    def void(self, *, reference: str, idempotency_key: str) -> GatewayResult: ...

    def refund(self, *, reference: str, amount: int, idempotency_key: str) -> GatewayResult: ...

    def retrieve(self, *, idempotency_key: str) -> GatewayResult | None:
        """What the gateway knows of the charge made with this key (None: it never saw it)."""
        ...
