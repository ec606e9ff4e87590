"""The one small interface every payment gateway sits behind.

Calls are made outside any database transaction (never hold row locks across the network). Every
call that can move money carries an idempotency key chosen by Paydesk, so a retried call is never
doubled at the gateway. A gateway answers with a `GatewayResult`, or raises:
- `GatewayRetryableError`: a transient failure (5xx, timeout before sending); safe to retry with
  the same idempotency key;
- `GatewayResponseLost`: the request may have reached the gateway but no answer came back; the
  outcome is unknown and must be settled by `retrieve` (reconciliation), never by guessing.
A decline is not an exception: it is a result with `status="failed"` and a `failure_code`.

Payouts (money leaving for a bank account) use the same results: `create_payout` answers
`in_transit`, `paid` or `failed`, and is retried with the same key, never doubled.

Before anything is written for a new charge, `payment_method_check` asks whether the gateway knows
the token at all: an unknown one (`UnknownPaymentMethod`, Stripe's `resource_missing`) is refused
as a bad request, as Stripe refuses it, instead of becoming a declined charge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

# A charge's statuses, and a payout's ("in_transit": the gateway took it, settled later; "paid").
ResultStatus = Literal["authorized", "captured", "failed", "voided", "refunded", "in_transit", "paid"]
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


@dataclass(frozen=True)
class PayoutDestination:
    """What Paydesk may show of a payout's destination: its kind and the account's last four digits."""

    type: str = "bank_account"
    last4: str = ""


class GatewayError(Exception):
    def __init__(self, message: str = "", *, code: str = "gateway_error") -> None:
        super().__init__(message or code)
        self.code = code


class UnknownPaymentMethod(GatewayError):
    """The gateway knows no such token or payment method: nothing can be charged to it."""

    def __init__(self, message: str = "", *, code: str = "resource_missing") -> None:
        super().__init__(message or "No such payment method.", code=code)


class PayoutsNotSupported(GatewayError):
    """This gateway sends no payouts (yet): nothing was sent."""

    def __init__(self, message: str = "", *, code: str = "payouts_unsupported") -> None:
        super().__init__(message or "This gateway does not support payouts.", code=code)


class GatewayRetryableError(GatewayError):
    """Transient: retry later with the same idempotency key."""


class GatewayResponseLost(GatewayError):
    """The outcome is unknown: settle it with `retrieve`, never by retrying blindly."""


class NoPayouts:
    """The payout calls of a gateway that sends no payouts (yet): each refuses, sending nothing."""

    name: str

    def payout_destination_check(self, *, destination: str) -> PayoutDestination:
        raise PayoutsNotSupported(f"The {self.name} gateway does not support payouts.")

    def create_payout(
        self, *, amount: int, currency: str, destination: str, idempotency_key: str
    ) -> GatewayResult:
        raise PayoutsNotSupported(f"The {self.name} gateway does not support payouts.")

    def retrieve_payout(self, *, idempotency_key: str) -> GatewayResult | None:
        raise PayoutsNotSupported(f"The {self.name} gateway does not support payouts.")


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

    # --- payouts: money leaving Paydesk for a bank account ---------------------------------------

    def payout_destination_check(self, *, destination: str) -> PayoutDestination:
        """What the gateway knows of a payout destination (a bank account token); UnknownPaymentMethod
        when it knows no such token, PayoutsNotSupported when it sends no payouts. Moves no money."""
        ...

    def create_payout(
        self, *, amount: int, currency: str, destination: str, idempotency_key: str
    ) -> GatewayResult:
        """Sends `amount` to `destination`; the idempotency key (derived from the payout's id) makes a
        retried call the same payout. Answers `in_transit` (settled later: `retrieve_payout`, the
        gateway's webhooks), `paid`, or `failed` with a failure_code (`account_closed`)."""
        ...

    def retrieve_payout(self, *, idempotency_key: str) -> GatewayResult | None:
        """What the gateway knows of the payout created with this key (None: it never saw it)."""
        ...
