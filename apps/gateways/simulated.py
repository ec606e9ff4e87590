"""The simulated gateway (the default): deterministic test tokens with Stripe's names.

| token                                 | authorize answers                                         |
|---------------------------------------|-----------------------------------------------------------|
| `tok_visa`, `tok_mastercard`          | captured (authorized when capture=False); visa 4242, mastercard 4444 |
| `tok_chargeDeclined`                  | failed `card_declined`                                    |
| `tok_chargeDeclinedInsufficientFunds` | failed `insufficient_funds`                               |
| `tok_riskLevelElevated`               | authorized only, even when capture=True; risk_level "elevated" |
| `tok_transientError`                  | GatewayRetryableError on the first two calls with a key, then as `tok_visa` |
| `tok_responseLost`                    | charged as `tok_visa`, but every call raises GatewayResponseLost; `retrieve` tells |
| anything else                         | unknown: `payment_method_check` raises UnknownPaymentMethod (`resource_missing`, Stripe's "No such token"); authorize, if still called, answers failed `resource_missing` |

Payouts go to test bank account tokens (Stripe's names): `btok_success` is paid, `btok_accountClosed`
fails with `account_closed`, at once; any other destination is unknown (UnknownPaymentMethod).

It stands for an external system that web processes and Celery workers share, so its state lives
in its own tables (`SimulatedCharge`, `SimulatedChargeOperation`), written in its own transactions.
Each call opens a durable transaction, which Django refuses inside another one: calling a gateway
while holding the caller's row locks raises RuntimeError instead of silently joining its
transaction. Every call is idempotent by its key. A repeat gets the first answer and moves no
money; a key reused with other parameters is refused (`idempotency_key_reused`). Operations the
gateway refuses (capture more than authorized, refund more than captured minus refunded, a wrong
state, an unknown reference) raise GatewayError with Stripe's codes (`amount_too_large`,
`payment_intent_unexpected_state`, `charge_already_refunded`, `resource_missing`) and change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from apps.gateways.base import (
    GatewayError,
    GatewayResponseLost,
    GatewayResult,
    GatewayRetryableError,
    PayoutDestination,
    ResultStatus,
    RiskLevel,
    UnknownPaymentMethod,
)
from apps.gateways.models import SimulatedCharge, SimulatedChargeOperation, SimulatedPayout

# Public test token names, not secrets.
# bandit B105: a test card token, not a secret
TRANSIENT_TOKEN = "tok_transientError"  # noqa: S105  # nosec B105
# bandit B105: a test card token, not a secret
RESPONSE_LOST_TOKEN = "tok_responseLost"  # noqa: S105  # nosec B105
TRANSIENT_FAILURES = 2
UNKNOWN_CARD_FAILURE_CODE = "resource_missing"

Status = SimulatedCharge.Status
Kind = SimulatedChargeOperation.Kind


@dataclass(frozen=True)
class SimulatedCard:
    brand: str
    last4: str
    failure_code: str = ""
    failure_message: str = ""
    risk_level: RiskLevel = "normal"


# last4 of the declining and risky tokens are those of Stripe's matching test card numbers.
TEST_CARDS: dict[str, SimulatedCard] = {
    "tok_visa": SimulatedCard("visa", "4242"),
    "tok_mastercard": SimulatedCard("mastercard", "4444"),
    "tok_chargeDeclined": SimulatedCard("visa", "0002", "card_declined", "Your card was declined."),
    "tok_chargeDeclinedInsufficientFunds": SimulatedCard(
        "visa", "9995", "insufficient_funds", "Your card has insufficient funds."
    ),
    "tok_riskLevelElevated": SimulatedCard("visa", "9235", risk_level="elevated"),
    TRANSIENT_TOKEN: SimulatedCard("visa", "4242"),
    RESPONSE_LOST_TOKEN: SimulatedCard("visa", "4242"),
}


@dataclass(frozen=True)
class SimulatedBankAccount:
    last4: str
    failure_code: str = ""
    failure_message: str = ""


# last4 of Stripe's matching test bank account numbers (000123456789, 000111111116).
TEST_BANK_ACCOUNTS: dict[str, SimulatedBankAccount] = {
    "btok_success": SimulatedBankAccount("6789"),
    "btok_accountClosed": SimulatedBankAccount("1116", "account_closed", "The bank account has been closed."),
}
_UNKNOWN_CARD = SimulatedCard("", "", UNKNOWN_CARD_FAILURE_CODE, "No such payment method token.")
_OPERATION_STATUS: dict[str, ResultStatus] = {
    Kind.CAPTURE: "captured",
    Kind.VOID: "voided",
    Kind.REFUND: "refunded",
}

# A charge's state as a result's status (a pending charge is not one: `retrieve` answers None).
_SETTLED_STATUS: dict[str, ResultStatus] = {
    Status.AUTHORIZED: "authorized",
    Status.CAPTURED: "captured",
    Status.FAILED: "failed",
    Status.VOIDED: "voided",
    Status.REFUNDED: "refunded",
}


def _own_transaction() -> transaction.Atomic:
    # Durable: the gateway commits on its own, like a remote system, and refuses to be called from
    # inside a caller's transaction (Django raises RuntimeError for a nested durable block).
    return transaction.atomic(durable=True)


class SimulatedGateway:
    name = "simulated"

    def authorize(
        self, *, amount: int, currency: str, token: str, idempotency_key: str, capture: bool
    ) -> GatewayResult:
        _require_positive(amount)
        with _own_transaction():
            charge, _ = SimulatedCharge.objects.select_for_update().get_or_create(
                idempotency_key=idempotency_key,
                defaults={
                    "token": token,
                    "amount": amount,
                    "currency": currency,
                    "capture_requested": capture,
                },
            )
            asked = (token, amount, currency, capture)
            if (charge.token, charge.amount, charge.currency, charge.capture_requested) != asked:
                raise _key_reused()
            attempt = charge.attempts + 1
            SimulatedCharge.objects.filter(pk=charge.pk).update(attempts=F("attempts") + 1)
            if charge.status == Status.PENDING and not (
                token == TRANSIENT_TOKEN and attempt <= TRANSIENT_FAILURES
            ):
                _charge(charge)
        # Raised after the commit: the attempt (and for a lost response, the charge) is recorded.
        if charge.status == Status.PENDING:
            raise GatewayRetryableError("Simulated transient gateway failure.", code="gateway_unavailable")
        if token == RESPONSE_LOST_TOKEN:
            raise GatewayResponseLost("Simulated lost response: the charge was made.", code="response_lost")
        return _result(charge, status=_authorize_status(charge))

    def payment_method_check(self, *, token: str) -> None:
        if token not in TEST_CARDS:
            raise UnknownPaymentMethod("No such token: the simulated gateway knows only its test tokens.")

    def capture(self, *, reference: str, amount: int, idempotency_key: str) -> GatewayResult:
        _require_positive(amount)
        return self._operate(kind=Kind.CAPTURE, reference=reference, amount=amount, key=idempotency_key)

    def void(self, *, reference: str, idempotency_key: str) -> GatewayResult:
        return self._operate(kind=Kind.VOID, reference=reference, amount=None, key=idempotency_key)

    def refund(self, *, reference: str, amount: int, idempotency_key: str) -> GatewayResult:
        _require_positive(amount)
        return self._operate(kind=Kind.REFUND, reference=reference, amount=amount, key=idempotency_key)

    def retrieve(self, *, idempotency_key: str) -> GatewayResult | None:
        with _own_transaction():
            charge = SimulatedCharge.objects.filter(idempotency_key=idempotency_key).first()
        if charge is None or charge.status == Status.PENDING:
            return None  # never charged: the gateway only ever answered with transient errors
        return _result(charge, status=_SETTLED_STATUS[charge.status])

    def payout_destination_check(self, *, destination: str) -> PayoutDestination:
        account = TEST_BANK_ACCOUNTS.get(destination)
        if account is None:
            raise UnknownPaymentMethod(
                "No such destination: the simulated gateway knows only btok_success and btok_accountClosed."
            )
        return PayoutDestination(type="bank_account", last4=account.last4)

    def create_payout(
        self, *, amount: int, currency: str, destination: str, idempotency_key: str
    ) -> GatewayResult:
        _require_positive(amount)
        account = TEST_BANK_ACCOUNTS.get(destination)
        if account is None:
            raise GatewayError(f"No such destination: {destination[:40]!r}.", code="resource_missing")
        with _own_transaction():
            payout, _ = SimulatedPayout.objects.get_or_create(
                idempotency_key=idempotency_key,
                defaults={
                    "destination": destination,
                    "amount": amount,
                    "currency": currency,
                    # Settled at once: a real bank answers days later (Stripe: in_transit, then a webhook).
                    "status": SimulatedPayout.Status.FAILED
                    if account.failure_code
                    else SimulatedPayout.Status.PAID,
                    "failure_code": account.failure_code,
                },
            )
            if (payout.destination, payout.amount, payout.currency) != (destination, amount, currency):
                raise _key_reused()
        return _payout_result(payout)

    def retrieve_payout(self, *, idempotency_key: str) -> GatewayResult | None:
        with _own_transaction():
            payout = SimulatedPayout.objects.filter(idempotency_key=idempotency_key).first()
        return None if payout is None else _payout_result(payout)

    def _operate(self, *, kind: str, reference: str, amount: int | None, key: str) -> GatewayResult:
        with _own_transaction():
            charge = SimulatedCharge.objects.select_for_update().filter(pk=reference).first()
            if charge is None:
                raise GatewayError(f"No such charge: {reference!r}.", code="resource_missing")
            done = SimulatedChargeOperation.objects.filter(idempotency_key=key).first()
            if done is None:
                applied = _OPERATIONS[kind](charge, amount)
                done = _record_operation(charge, kind=kind, amount=applied, key=key)
            elif (done.charge_id, done.kind) != (reference, kind) or amount not in (None, done.amount):
                raise _key_reused()
        return _result(charge, status=_OPERATION_STATUS[done.kind], amount=done.amount)


def _authorize_status(charge: SimulatedCharge) -> ResultStatus:
    """What authorize answers for this charge's token and capture flag, the first time and every time."""
    card = TEST_CARDS.get(charge.token, _UNKNOWN_CARD)
    if card.failure_code:
        return "failed"
    return "captured" if charge.capture_requested and card.risk_level == "normal" else "authorized"


def _charge(charge: SimulatedCharge) -> None:
    """Settles a pending charge by its token; the caller holds the row lock."""
    outcome = _authorize_status(charge)
    charge.status = Status(outcome)
    charge.failure_code = TEST_CARDS.get(charge.token, _UNKNOWN_CARD).failure_code
    charge.amount_captured = charge.amount if outcome == "captured" else 0
    charge.save(update_fields=["status", "failure_code", "amount_captured"])


def _capture(charge: SimulatedCharge, amount: int) -> int:
    _expect_status(charge, Status.AUTHORIZED)
    if amount > charge.amount:
        raise GatewayError(
            f"Cannot capture {amount}: only {charge.amount} is authorized.", code="amount_too_large"
        )
    # A partial capture releases the rest of the authorization, as Stripe's does.
    charge.status, charge.amount_captured = Status.CAPTURED, amount
    charge.save(update_fields=["status", "amount_captured"])
    return amount


def _void(charge: SimulatedCharge, amount: None) -> int:
    _expect_status(charge, Status.AUTHORIZED)
    charge.status = Status.VOIDED
    charge.save(update_fields=["status"])
    return charge.amount


def _refund(charge: SimulatedCharge, amount: int) -> int:
    if charge.status == Status.REFUNDED:
        raise GatewayError("The charge is already fully refunded.", code="charge_already_refunded")
    _expect_status(charge, Status.CAPTURED)
    refundable = charge.amount_captured - charge.amount_refunded
    if amount > refundable:
        raise GatewayError(f"Cannot refund {amount}: only {refundable} is left.", code="amount_too_large")
    SimulatedCharge.objects.filter(pk=charge.pk).update(
        amount_refunded=F("amount_refunded") + amount,
        status=Status.REFUNDED if amount == refundable else Status.CAPTURED,
    )
    charge.refresh_from_db(fields=["amount_refunded", "status"])
    return amount


# Each applies one operation under the charge's row lock, or refuses it with a GatewayError.
_OPERATIONS: dict[str, Callable[[SimulatedCharge, Any], int]] = {
    Kind.CAPTURE: _capture,
    Kind.VOID: _void,
    Kind.REFUND: _refund,
}


def _record_operation(
    charge: SimulatedCharge, *, kind: str, amount: int, key: str
) -> SimulatedChargeOperation:
    try:
        with transaction.atomic():
            return SimulatedChargeOperation.objects.create(
                idempotency_key=key, charge=charge, kind=kind, amount=amount
            )
    except IntegrityError:
        raise _key_reused()  # taken meanwhile by an operation on another charge; all of this rolls back


def _expect_status(charge: SimulatedCharge, status: str) -> None:
    if charge.status != status:
        raise GatewayError(
            f"The charge is {charge.status}; this needs it {status}.", code="payment_intent_unexpected_state"
        )


def _require_positive(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
        raise GatewayError("amount must be a positive integer in minor units.", code="amount_too_small")


def _key_reused() -> GatewayError:
    return GatewayError(
        "This idempotency key was already used with other parameters.", code="idempotency_key_reused"
    )


def _result(charge: SimulatedCharge, *, status: ResultStatus, amount: int | None = None) -> GatewayResult:
    card = TEST_CARDS.get(charge.token, _UNKNOWN_CARD)
    failed = status == "failed"
    return GatewayResult(
        status=status,
        reference=charge.reference,
        amount=charge.amount if amount is None else amount,
        currency=charge.currency,
        failure_code=card.failure_code if failed else "",
        failure_message=card.failure_message if failed else "",
        risk_level=card.risk_level,
        card_brand=card.brand,
        card_last4=card.last4,
        raw={
            "id": charge.reference,
            "object": "charge",
            "amount": charge.amount,
            "amount_captured": charge.amount_captured,
            "amount_refunded": charge.amount_refunded,
            "currency": charge.currency,
            "status": charge.status,
            "failure_code": charge.failure_code or None,
        },
    )


def _payout_result(payout: SimulatedPayout) -> GatewayResult:
    account = TEST_BANK_ACCOUNTS.get(payout.destination, SimulatedBankAccount(""))
    failed = payout.status == SimulatedPayout.Status.FAILED
    return GatewayResult(
        status="failed" if failed else "paid",
        reference=payout.reference,
        amount=payout.amount,
        currency=payout.currency,
        failure_code=payout.failure_code,
        failure_message=account.failure_message if failed else "",
        raw={
            "id": payout.reference,
            "object": "payout",
            "amount": payout.amount,
            "currency": payout.currency,
            "status": payout.status,
            "failure_code": payout.failure_code or None,
        },
    )
