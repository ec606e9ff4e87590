"""A circuit breaker in front of a gateway, shared by every web and worker process.

Closed: calls go through; each retryable failure (GatewayRetryableError, GatewayResponseLost)
counts, any answer from the gateway (a capture, a decline, a refused key) resets the count.
After GATEWAY_CIRCUIT_FAILURE_THRESHOLD failures in a row it opens.
Open: for GATEWAY_CIRCUIT_COOLDOWN_SECONDS calls fail fast with
GatewayRetryableError(code="gateway_circuit_open"), never touching the gateway, so callers
retry later instead of piling onto an outage.
Half-open: once the cool-down is over, the first caller to claim the trial slot is let through
(others keep failing fast); its success closes the circuit, its failure opens it again.

The state lives in the Django cache (Redis in production) so all processes see one circuit:
- `<prefix>:failures`   consecutive failures, counted with add + incr (atomic in Redis);
- `<prefix>:open_until` unix time the cool-down ends; its presence means open or half-open;
- `<prefix>:trial`      the half-open trial slot, claimed with add (first caller wins) and
  expiring after a cool-down in case its holder dies mid-call.
The cache being down must not stop payments: the breaker then lets every call through and logs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal, TypeVar

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError

from apps.gateways.base import (
    GatewayError,
    GatewayResponseLost,
    GatewayResult,
    GatewayRetryableError,
    PaymentGateway,
    PayoutDestination,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
CACHE_ERRORS = (RedisError, ConnectionInterrupted, OSError)
CircuitState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int | None = None,
        cooldown_seconds: float | None = None,
        cache_alias: str = "default",
    ) -> None:
        self.name = name
        self._failure_threshold = failure_threshold
        self._cooldown_seconds = cooldown_seconds
        self._cache_alias = cache_alias
        prefix = f"gateway-circuit:{name}"
        self._failures_key = f"{prefix}:failures"
        self._open_until_key = f"{prefix}:open_until"
        self._trial_key = f"{prefix}:trial"

    @property
    def failure_threshold(self) -> int:
        if self._failure_threshold is not None:
            return self._failure_threshold
        return settings.GATEWAY_CIRCUIT_FAILURE_THRESHOLD

    @property
    def cooldown_seconds(self) -> float:
        if self._cooldown_seconds is not None:
            return self._cooldown_seconds
        return settings.GATEWAY_CIRCUIT_COOLDOWN_SECONDS

    @property
    def _cache(self) -> BaseCache:
        return caches[self._cache_alias]

    def state(self) -> CircuitState:
        """For dashboards and health checks; calls never decide on it (it may be stale at once)."""
        try:
            open_until = self._cache.get(self._open_until_key)
        except CACHE_ERRORS:
            logger.warning("circuit %s: cache unavailable, reporting closed", self.name, exc_info=True)
            return "closed"
        if open_until is None:
            return "closed"
        return "open" if time.time() < open_until else "half_open"

    def call(self, operation: Callable[[], T]) -> T:
        trial = self._admit()
        try:
            result = operation()
        except (GatewayRetryableError, GatewayResponseLost):
            self._record_failure(trial=trial)
            raise
        except GatewayError:
            # The gateway answered (e.g. it refused the API key): it is up, whatever it said.
            self._record_success(trial=trial)
            raise
        except BaseException:
            if trial:
                self._release_trial()
            raise
        self._record_success(trial=trial)
        return result

    def _admit(self) -> bool:
        """Lets a call through (True: it is the half-open trial) or raises the fail-fast error."""
        try:
            open_until = self._cache.get(self._open_until_key)
            if open_until is None:
                return False
            remaining = open_until - time.time()
            if remaining <= 0 and self._cache.add(self._trial_key, 1, timeout=max(self.cooldown_seconds, 1)):
                logger.info("circuit %s: half-open, letting one trial call through", self.name)
                return True
        except CACHE_ERRORS:
            logger.warning(
                "circuit %s: cache unavailable, treating the circuit as closed", self.name, exc_info=True
            )
            return False
        raise GatewayRetryableError(
            f"The {self.name} gateway is failing; calls are paused for up to {max(remaining, 0):.0f}s.",
            code="gateway_circuit_open",
        )

    def _record_failure(self, *, trial: bool) -> None:
        try:
            if trial:
                self._open(reason="the half-open trial call failed")
                return
            self._cache.add(self._failures_key, 0, timeout=None)
            try:
                failures = self._cache.incr(self._failures_key)
            except ValueError:  # reset by a success between add and incr: this is the first again
                self._cache.add(self._failures_key, 1, timeout=None)
                failures = 1
            if failures >= self.failure_threshold:
                self._open(reason=f"{failures} consecutive failures")
        except CACHE_ERRORS:
            logger.warning("circuit %s: cache unavailable, failure not counted", self.name, exc_info=True)

    def _open(self, *, reason: str) -> None:
        self._cache.set(self._open_until_key, time.time() + self.cooldown_seconds, timeout=None)
        self._cache.delete_many([self._failures_key, self._trial_key])
        logger.warning("circuit %s: opened for %ss (%s)", self.name, self.cooldown_seconds, reason)

    def _record_success(self, *, trial: bool) -> None:
        try:
            if trial:
                self._cache.delete_many([self._open_until_key, self._trial_key, self._failures_key])
                logger.info("circuit %s: closed, the trial call succeeded", self.name)
            else:
                self._cache.delete(self._failures_key)
        except CACHE_ERRORS:
            logger.warning("circuit %s: cache unavailable, success not recorded", self.name, exc_info=True)

    def _release_trial(self) -> None:
        try:
            self._cache.delete(self._trial_key)
        except CACHE_ERRORS:
            logger.warning(
                "circuit %s: cache unavailable, trial slot expires on its own", self.name, exc_info=True
            )


class CircuitBreakerGateway:
    """Any `PaymentGateway`, behind a `CircuitBreaker` named after it."""

    def __init__(self, inner: PaymentGateway, *, breaker: CircuitBreaker | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.breaker = breaker or CircuitBreaker(inner.name)

    def authorize(
        self, *, amount: int, currency: str, token: str, idempotency_key: str, capture: bool
    ) -> GatewayResult:
        return self.breaker.call(
            lambda: self.inner.authorize(
                amount=amount,
                currency=currency,
                token=token,
                idempotency_key=idempotency_key,
                capture=capture,
            )
        )

    def payment_method_check(self, *, token: str) -> None:
        # A look-up, not a charge: it neither closes nor opens the circuit (a check answered without
        # a call must not reset the failures counted), and while the circuit is not closed it is
        # skipped: the charge that follows fails fast, as retryable, as it would have anyway.
        if self.breaker.state() == "closed":
            self.inner.payment_method_check(token=token)

    def capture(self, *, reference: str, amount: int, idempotency_key: str) -> GatewayResult:
        return self.breaker.call(
            lambda: self.inner.capture(reference=reference, amount=amount, idempotency_key=idempotency_key)
        )

    def void(self, *, reference: str, idempotency_key: str) -> GatewayResult:
        return self.breaker.call(
            lambda: self.inner.void(reference=reference, idempotency_key=idempotency_key)
        )

    def refund(self, *, reference: str, amount: int, idempotency_key: str) -> GatewayResult:
        return self.breaker.call(
            lambda: self.inner.refund(reference=reference, amount=amount, idempotency_key=idempotency_key)
        )

    def retrieve(self, *, idempotency_key: str) -> GatewayResult | None:
        return self.breaker.call(lambda: self.inner.retrieve(idempotency_key=idempotency_key))

    def payout_destination_check(self, *, destination: str) -> PayoutDestination:
        # A look-up, like payment_method_check: it moves no money and leaves the circuit as it is.
        return self.inner.payout_destination_check(destination=destination)

    def create_payout(
        self, *, amount: int, currency: str, destination: str, idempotency_key: str
    ) -> GatewayResult:
        return self.breaker.call(
            lambda: self.inner.create_payout(
                amount=amount, currency=currency, destination=destination, idempotency_key=idempotency_key
            )
        )

    def retrieve_payout(self, *, idempotency_key: str) -> GatewayResult | None:
        return self.breaker.call(lambda: self.inner.retrieve_payout(idempotency_key=idempotency_key))
