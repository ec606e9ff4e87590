"""The one way Paydesk talks to a gateway: `gateway_call`, used by payments and by wallet deposits.

A call runs outside any database transaction (the gateways refuse to run inside one), behind the
circuit breaker (`get_gateway` wraps every gateway in it), and leaves the same trail whoever made it:

    exchange = gateway_call(subject, operation, idempotency_key, call)
      ├─ call(gateway)            the network call; a GatewayError it raises is the outcome, not raised
      └─ metrics.observe_gateway  latency histogram, labelled with the result status or error kind
    settle (the caller's transaction)
      └─ exchange.record()        one GatewayAttempt row (outcome, error code, latency) and the raw
                                  exchange handed to the raw-log sink, committed with the settlement

Recording inside the settling transaction makes the attempt, its raw-log event and the state change
one commit and one hand-over to the broker. Where no settlement follows, or the settlement could not
be written, the caller records the exchange on its own with `exchange.record_alone()`, so every call
made leaves its attempt. `attempt_record` is the row-writing step itself.

A subject is what the call is for: anything with the attributes the raw log reads (a `Payment`
has them all); `ChargeSubject` builds one for a subject that is not a payment (a deposit).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, TypeAlias

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.audit.rawlog import raw_log_gateway_exchange
from apps.core import metrics
from apps.gateways import get_gateway
from apps.gateways.base import (
    GatewayError,
    GatewayResponseLost,
    GatewayResult,
    GatewayRetryableError,
    PaymentGateway,
)
from apps.gateways.models import GatewayAttempt

logger = logging.getLogger(__name__)

Outcome: TypeAlias = GatewayResult | GatewayError
# What a `retrieve` that found nothing is recorded as (the gateway never saw the key).
NOT_FOUND = GatewayResult(status="failed", failure_code="not_found")


class GatewaySubject(Protocol):
    """What a gateway call is for, as the attempt and the raw log describe it."""

    @property
    def pk(self) -> str: ...
    @property
    def gateway(self) -> str: ...
    @property
    def gateway_reference(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def capture_method(self) -> str: ...
    @property
    def operation_amount(self) -> int: ...


@dataclass(frozen=True)
class ChargeSubject:
    """A subject that is not a Payment (a wallet deposit): its id, gateway and money."""

    pk: str
    gateway: str
    currency: str
    amount: int
    gateway_reference: str = ""
    capture_method: str = "automatic"
    operation_amount: int = 0


@dataclass(frozen=True)
class GatewayExchange:
    """One call made: what it was for, and its outcome — the gateway's result (None: a `retrieve`
    that found nothing) or the GatewayError it raised — and its latency. Not yet recorded."""

    subject: GatewaySubject
    operation: str
    idempotency_key: str
    outcome: GatewayResult | GatewayError | None
    latency_ms: int

    @property
    def lost(self) -> bool:
        return isinstance(self.outcome, GatewayResponseLost)

    @property
    def retryable(self) -> bool:
        return isinstance(self.outcome, GatewayRetryableError)

    def record(self) -> GatewayAttempt:
        """Writes the attempt and its raw-log event inside the caller's (settling) transaction."""
        return attempt_record(
            subject=self.subject,
            operation=self.operation,
            idempotency_key=self.idempotency_key,
            outcome=self.outcome or NOT_FOUND,
            latency_ms=self.latency_ms,
        )

    def record_alone(self) -> GatewayAttempt | None:
        """Writes the attempt in a short transaction of its own, for a call no settlement records
        (or whose settlement failed); None, logged, if the database refuses it too."""
        try:
            with transaction.atomic():
                return self.record()
        except Exception:
            logger.exception(
                "%s %s of %s: the gateway answered but the attempt was not recorded",
                self.subject.gateway,
                self.operation,
                self.subject.pk,
            )
            return None


def gateway_call(
    *,
    subject: GatewaySubject,
    operation: str,
    idempotency_key: str,
    call: Callable[[PaymentGateway], GatewayResult | None],
) -> GatewayExchange:
    """Calls `subject.gateway` (behind its circuit breaker) with `call(gateway)`, times it and
    observes the metric; never raises a GatewayError (it is the outcome). The caller records the
    exchange: `record()` in its settling transaction, or `record_alone()`."""
    gateway = get_gateway(subject.gateway or None)
    started = time.monotonic()
    try:
        outcome: GatewayResult | GatewayError | None = call(gateway)
    except GatewayError as exc:
        outcome = exc
    metrics.observe_gateway(
        gateway=subject.gateway, operation=operation, outcome=outcome or NOT_FOUND, started=started
    )
    return GatewayExchange(
        subject=subject,
        operation=operation,
        idempotency_key=idempotency_key,
        outcome=outcome,
        latency_ms=int((time.monotonic() - started) * 1000),
    )


def not_found_may_be_too_soon(*, gateway: str, created_at: datetime) -> bool:
    """A `retrieve` that found nothing says "never charged" only once the gateway's search can see the
    call: Stripe's search index lags creation (by up to STRIPE_SEARCH_GRACE_SECONDS), so a recent
    subject is asked again later rather than failed."""
    grace = timedelta(seconds=settings.STRIPE_SEARCH_GRACE_SECONDS)
    return gateway == "stripe" and created_at > timezone.now() - grace


def attempt_record(
    *, subject: GatewaySubject, operation: str, idempotency_key: str, outcome: Outcome, latency_ms: int
) -> GatewayAttempt:
    """Writes one GatewayAttempt and hands the exchange to the raw-log sink, inside the caller's
    transaction. `outcome`: the gateway's result, or the GatewayError it raised."""
    attempt = GatewayAttempt.objects.create(
        subject_id=subject.pk,
        operation=operation,
        idempotency_key=idempotency_key,
        outcome=outcome_label(outcome),
        error_code=(_error_code(outcome) or "")[:64],
        latency_ms=latency_ms,
    )
    raw_log_gateway_exchange(subject=subject, attempt=attempt, outcome=outcome)
    return attempt


def outcome_label(outcome: Outcome | Exception) -> str:
    """An attempt's outcome: the result's status, or lost / retryable_error / error."""
    if isinstance(outcome, GatewayResult):
        return outcome.status
    if isinstance(outcome, GatewayResponseLost):
        return "lost"
    if isinstance(outcome, GatewayRetryableError):
        return "retryable_error"
    return "error"


def _error_code(outcome: Outcome | Exception) -> str:
    if isinstance(outcome, GatewayResult):
        return outcome.failure_code
    return getattr(outcome, "code", "gateway_error")
