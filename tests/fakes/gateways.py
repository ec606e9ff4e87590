"""One face for the fakes of the card gateways, so a behaviour test runs unchanged on each of them.

The `card_gateway` fixture (root conftest) starts the gateway's fake, points the settings at it
(PAYMENT_GATEWAY included) and hands the test a harness: the gateway, tokens of its test cards by
the same names everywhere, the fake's scripting (failures, lost answers, hangs) and what the fake
holds (a charge's state and captured amount, the charges made, the refunds).

Card names: "visa" and "mastercard" are charged, "declined" is declined (card_declined), "held"
is authorized and held for review (Stripe's elevated risk, Authorize.Net's held transaction).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from apps.gateways.authorizenet import AuthorizeNetGateway
from apps.gateways.authorizenet.submissions import reference_for
from apps.gateways.stripe_gateway import StripeGateway
from tests.fakes.authorizenet import LOGIN_ID, TRANSACTION_KEY, FakeAuthorizeNet
from tests.fakes.stripe_server import FakeStripe


def _configure(settings: Any, **values: Any) -> dict[str, str]:
    """Sets the values in this process's settings; returns them as a worker process's environment."""
    for name, value in values.items():
        setattr(settings, name, value)
    return {name: str(value) for name, value in values.items()}


class Harness(Protocol):
    name: str
    fake: Any
    env: dict[str, str]  # the settings it made, for a worker process's environment
    # Each gateway's declines beyond the generic one: (card name, failure code).
    declines: list[tuple[str, str]]

    def gateway(self) -> Any: ...
    def token(self, card: str = "visa") -> str: ...
    def state(self, reference: str) -> str: ...
    def captured(self, reference: str) -> int: ...
    def refunds(self) -> list[int]: ...
    def settle(self) -> None: ...
    def charge_requests(self, key: str) -> int: ...


class StripeHarness:
    name = "stripe"
    declines = [("declined", "card_declined"), ("chargeDeclinedInsufficientFunds", "insufficient_funds")]
    _CARDS = {"declined": "chargeDeclined", "held": "riskLevelElevated"}
    _STATES = {"requires_capture": "authorized", "succeeded": "captured", "canceled": "voided"}

    def __init__(self, fake: FakeStripe, settings: Any) -> None:
        self.fake = fake
        self.env = _configure(
            settings,
            PAYMENT_GATEWAY="stripe",
            STRIPE_API_KEY=fake.api_key,
            STRIPE_API_BASE=fake.url,
            STRIPE_TIMEOUT_SECONDS=1.0,
            STRIPE_SEARCH_GRACE_SECONDS=0,
        )

    def gateway(self) -> StripeGateway:
        return StripeGateway()

    def token(self, card: str = "visa") -> str:
        return f"tok_{self._CARDS.get(card, card)}"

    def state(self, reference: str) -> str:
        return self._STATES.get(self.fake.payment_intent(reference)["status"], "other")

    def captured(self, reference: str) -> int:
        return self.fake.payment_intent(reference)["amount_received"]

    def refunds(self) -> list[int]:
        return [refund["amount"] for refund in self.fake.refunds]

    def settle(self) -> None:
        return  # Stripe refunds a charge whenever it likes

    def charge_requests(self, key: str) -> int:
        """Charges sent with this idempotency key (Stripe's `Idempotency-Key`)."""
        return sum(
            request.method == "POST"
            and request.path == "/v1/payment_intents"
            and request.idempotency_key == key
            for request in self.fake.requests
        )


class AuthorizeNetHarness:
    name = "authorizenet"
    declines = [("declined", "card_declined"), ("cvcMismatch", "incorrect_cvc"), ("expired", "expired_card")]
    _STATES = {
        "authorizedPendingCapture": "authorized",
        "capturedPendingSettlement": "captured",
        "settledSuccessfully": "captured",
        "voided": "voided",
        "FDSPendingReview": "held",
        "FDSAuthorizedPendingReview": "held",
    }

    def __init__(self, fake: FakeAuthorizeNet, settings: Any) -> None:
        self.fake = fake
        self.env = _configure(
            settings,
            PAYMENT_GATEWAY="authorizenet",
            AUTHORIZENET_API_URL=fake.url,
            AUTHORIZENET_API_LOGIN_ID=LOGIN_ID,
            AUTHORIZENET_TRANSACTION_KEY=TRANSACTION_KEY,
            AUTHORIZENET_TIMEOUT_SECONDS=1.0,
            AUTHORIZENET_NOT_FOUND_GRACE_SECONDS=0,
        )

    def gateway(self) -> AuthorizeNetGateway:
        return AuthorizeNetGateway()

    def token(self, card: str = "visa") -> str:
        return self.fake.nonce(card)

    def state(self, reference: str) -> str:
        return self._STATES.get(self.fake.transaction(reference)["status"], "other")

    def captured(self, reference: str) -> int:
        return int(self.fake.transaction(reference)["settle_amount"] * 100)

    def refunds(self) -> list[int]:
        """Refund transactions, and charges refunded whole by a void before settlement."""
        return [
            int(Decimal(txn["settle_amount"] or txn["auth_amount"]) * 100)
            for txn in self.fake.transactions
            if txn["type"] == "refundTransaction" or (txn["status"] == "voided" and txn["settle_amount"] > 0)
        ]

    def settle(self) -> None:
        self.fake.settle()

    def charge_requests(self, key: str) -> int:
        """Charges sent for this idempotency key (as its reference: invoiceNumber and refId)."""
        reference = reference_for(key)
        return sum(
            request.kind in ("authCaptureTransaction", "authOnlyTransaction")
            and request.fields.get("invoiceNumber") == request.fields.get("refId") == reference
            for request in self.fake.requests
        )
